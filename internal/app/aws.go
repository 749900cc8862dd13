package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/config"
	"github.com/redis/go-redis/v9"
)

// SecretsAPI is the part of the Secrets Manager client the functions use.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ResolveSecrets reads the Secrets Manager secrets that the environment
// read through getenv names, before the configuration is loaded from it:
// the signing secrets (HOOKLINE_SIGNING_SECRETS_ARN) and the Redis AUTH
// token (HOOKLINE_REDIS_TOKEN_ARN). It returns getenv with
// HOOKLINE_SIGNING_SECRETS holding the signing secrets read, so that
// config.Load validates the secrets ingest will check signatures with
// instead of having them written into the configuration afterwards, and the
// token, if any. sm is called only for an ARN that is set. Errors name the
// variable, never a secret value.
func ResolveSecrets(ctx context.Context, getenv func(string) string, sm SecretsAPI) (env func(string) string, token string, err error) {
	env = getenv
	if arn := strings.TrimSpace(getenv(config.EnvSigningSecretsARN)); arn != "" {
		secrets, err := readSecret(ctx, sm, config.EnvSigningSecretsARN, arn)
		if err != nil {
			return nil, "", err
		}
		env = func(name string) string {
			if name == config.EnvSigningSecrets {
				return secrets
			}
			return getenv(name)
		}
	}
	if arn := strings.TrimSpace(getenv(config.EnvRedisTokenARN)); arn != "" {
		if token, err = readSecret(ctx, sm, config.EnvRedisTokenARN, arn); err != nil {
			return nil, "", err
		}
	}
	return env, token, nil
}

// readSecret returns the string value of the secret arn, which the
// variable name gave. Errors name the variable, never the value.
func readSecret(ctx context.Context, sm SecretsAPI, name, arn string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("app: %s: reading the secret: %w", name, err)
	}
	if out.SecretString == nil || strings.TrimSpace(*out.SecretString) == "" {
		return "", fmt.Errorf("app: %s: the secret has no string value", name)
	}
	return strings.TrimSpace(*out.SecretString), nil
}

// awsClients loads the AWS configuration when it is first needed, once: a
// function that names no secret and does not use IAM authentication never
// loads it. Its GetSecretValue makes it the SecretsAPI of ResolveSecrets.
type awsClients struct {
	loaded bool
	cfg    aws.Config
	err    error
	sm     SecretsAPI
}

// config returns the AWS configuration of the environment.
func (c *awsClients) config(ctx context.Context) (aws.Config, error) {
	if !c.loaded {
		c.loaded = true
		if c.cfg, c.err = awsconfig.LoadDefaultConfig(ctx); c.err != nil {
			c.err = fmt.Errorf("app: AWS configuration: %w", c.err)
		}
	}
	return c.cfg, c.err
}

// GetSecretValue calls Secrets Manager.
func (c *awsClients) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if c.sm == nil {
		cfg, err := c.config(ctx)
		if err != nil {
			return nil, err
		}
		c.sm = secretsmanager.NewFromConfig(cfg)
	}
	return c.sm.GetSecretValue(ctx, in, opts...)
}

// RedisAuth says how a Redis client authenticates; the zero value uses
// whatever the URL holds.
type RedisAuth struct {
	// Token, when set, is the AUTH password (with the URL's user, if any).
	Token string
	// IAM, when set, supplies ElastiCache IAM tokens.
	IAM *IAMTokens
}

// RedisClient returns a client for r with auth applied: a cluster client
// when r.Cluster is set, TLS for rediss://.
//
// The client honours context deadlines on the socket (go-redis
// ContextTimeoutEnabled), so a caller bounds a call by its context: ingest
// gives each request's Redis calls 800 ms and answers 503 in time even when
// Redis accepts connections but answers nothing. A call without a deadline
// keeps go-redis's timeouts (5 s reads), which stay above the scheduler's
// BLPOP wait for a wake (about 1 s at most). The other defaults are
// go-redis's too: they are shared by all three functions, and ingest's own
// bound does not depend on them.
func RedisClient(r config.Redis, auth RedisAuth) (redis.UniversalClient, error) {
	var provider func(ctx context.Context) (string, string, error)
	switch {
	case auth.IAM != nil:
		provider = auth.IAM.Credentials
	case auth.Token != "":
		provider = func(context.Context) (string, string, error) { return r.User, auth.Token, nil }
	}
	bad := fmt.Errorf("app: %s: not a valid redis:// or rediss:// URL", config.EnvRedisURL)
	if r.Cluster {
		opt, err := redis.ParseClusterURL(r.URL)
		if err != nil {
			return nil, bad
		}
		opt.CredentialsProviderContext = provider
		opt.ContextTimeoutEnabled = true
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		return nil, bad
	}
	opt.CredentialsProviderContext = provider
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}

// iamTokenLife is how long ElastiCache accepts an IAM token; tokens are
// renewed well before it runs out.
const (
	iamTokenLife  = 15 * time.Minute
	iamTokenRenew = 10 * time.Minute
)

// emptySHA256 is the hex SHA-256 of an empty payload, which presigned IAM
// token requests carry.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// IAMTokens makes ElastiCache IAM authentication tokens: a SigV4-presigned
// "connect" request for the cache and user, valid 15 minutes. A token is
// reused for 10 minutes, so every new connection gets one with at least 5
// minutes left. It is safe for concurrent use.
type IAMTokens struct {
	// Signer holds the credentials that sign the tokens (the function's role).
	Signer aws.CredentialsProvider
	// Region, CacheName and User identify the cache and the IAM-enabled user.
	Region, CacheName, User string
	// Serverless adds ResourceType=ServerlessCache, for ElastiCache Serverless.
	Serverless bool
	// Clock supplies "now". Default the wall clock.
	Clock clock.Clock

	mu      sync.Mutex
	token   string
	expires time.Time
}

// Credentials returns the user and a current token: go-redis calls it for
// every new connection (CredentialsProviderContext).
func (t *IAMTokens) Credentials(ctx context.Context) (string, string, error) {
	now := time.Now()
	if t.Clock != nil {
		now = t.Clock.Now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && now.Before(t.expires) {
		return t.User, t.token, nil
	}
	token, err := t.sign(ctx, now)
	if err != nil {
		return "", "", err
	}
	t.token, t.expires = token, now.Add(iamTokenRenew)
	return t.User, token, nil
}

// sign presigns GET http://<cache>/?Action=connect&User=<user> for the
// elasticache service; the token is the presigned URL without its scheme.
func (t *IAMTokens) sign(ctx context.Context, now time.Time) (string, error) {
	if t.Signer == nil || t.Region == "" || t.CacheName == "" || t.User == "" {
		return "", errors.New("app: IAM token: credentials, region, cache name and user are required")
	}
	q := url.Values{"Action": {"connect"}, "User": {t.User}}
	if t.Serverless {
		q.Set("ResourceType", "ServerlessCache")
	}
	q.Set("X-Amz-Expires", fmt.Sprint(int(iamTokenLife.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.CacheName+"/?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("app: IAM token: %w", err)
	}
	creds, err := t.Signer.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("app: IAM token: credentials: %w", err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptySHA256, "elasticache", t.Region, now)
	if err != nil {
		return "", fmt.Errorf("app: IAM token: sign: %w", err)
	}
	return strings.TrimPrefix(signed, "http://"), nil
}
