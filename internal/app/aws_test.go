package app

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var signAt = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func iamTokens(clk *clock.Fake, serverless bool) *IAMTokens {
	return &IAMTokens{
		Signer: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""),
		Region: "eu-west-1", CacheName: "hookline-cache", User: "hookline-app", Serverless: serverless, Clock: clk,
	}
}

// TestIAMTokenShape: the token is the presigned connect request ElastiCache
// expects, and it is renewed before its 15 minutes run out.
func TestIAMTokenShape(t *testing.T) {
	clk := clock.NewFake(signAt)
	tok := iamTokens(clk, true)
	user, token, err := tok.Credentials(context.Background())
	if err != nil || user != "hookline-app" {
		t.Fatal(user, err)
	}
	host, rawQuery, ok := strings.Cut(token, "/?")
	if !ok || host != "hookline-cache" {
		t.Fatalf("token %q does not start with the cache name", token)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Action": "connect", "User": "hookline-app", "ResourceType": "ServerlessCache",
		"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": "AKIDEXAMPLE/20261123/eu-west-1/elasticache/aws4_request",
		"X-Amz-Date": "20261123T120000Z", "X-Amz-Expires": "900", "X-Amz-SignedHeaders": "host",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(q.Get("X-Amz-Signature")) {
		t.Errorf("signature %q", q.Get("X-Amz-Signature"))
	}
	clk.Advance(9 * time.Minute)
	if _, again, _ := tok.Credentials(context.Background()); again != token {
		t.Error("token not reused within 10 minutes")
	}
	clk.Advance(time.Minute)
	if _, renewed, _ := tok.Credentials(context.Background()); renewed == token || !strings.Contains(renewed, "X-Amz-Date=20261123T121000Z") {
		t.Errorf("token not renewed after 10 minutes: %q", renewed)
	}
	if _, plain, _ := iamTokens(clock.NewFake(signAt), false).Credentials(context.Background()); strings.Contains(plain, "ResourceType") {
		t.Error("a node-based cache token carries ResourceType")
	}
}

// TestIAMAuthOnRealRedis: the client authenticates each connection with the
// provider's user and token (a Redis ACL user whose password is the token
// stands in for ElastiCache's IAM check).
func TestIAMAuthOnRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client(t)
	ctx := context.Background()
	clk := clock.NewFake(signAt)
	_, token, err := iamTokens(clk, true).Credentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "hookline-app", "on", ">"+token, "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	rdb, err := RedisClient(config.Redis{URL: "redis://" + srv.Addr()}, RedisAuth{IAM: iamTokens(clk, true)})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "hookline-app" {
		t.Fatalf("ACL WHOAMI = %q, %v", who, err)
	}
	// A token signed at another time is refused.
	other, _ := RedisClient(config.Redis{URL: "redis://" + srv.Addr()}, RedisAuth{IAM: iamTokens(clock.NewFake(signAt.Add(time.Hour)), true)})
	defer other.Close()
	if err := other.Ping(ctx).Err(); err == nil || strings.Contains(err.Error(), "X-Amz") {
		t.Fatalf("a wrong token connected, or the error shows the token: %v", err)
	}
}

type fakeSecrets map[string]string

func (f fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := f[aws.ToString(in.SecretId)]
	if !ok {
		return nil, errors.New("ResourceNotFoundException: Secrets Manager can't find the specified secret")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
}

// TestSecretsAndTokenAuth: signing secrets and the Redis AUTH token come
// from Secrets Manager; the token authenticates against a real server.
func TestSecretsAndTokenAuth(t *testing.T) {
	const token = "s3cr3t-auth-token-0123456789"
	srv := redistest.Start(t)
	if err := srv.Client(t).ConfigSet(context.Background(), "requirepass", token).Err(); err != nil {
		t.Fatal(err)
	}
	sm := fakeSecrets{
		"arn:aws:secretsmanager:eu-west-1:1:secret:sign": " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nwhsec_b2xk ",
		"arn:aws:secretsmanager:eu-west-1:1:secret:tok":  token,
	}
	vars := map[string]string{config.EnvSigningSecretsARN: "arn:aws:secretsmanager:eu-west-1:1:secret:sign",
		config.EnvRedisTokenARN: "arn:aws:secretsmanager:eu-west-1:1:secret:tok"}
	cfg := &config.Config{Redis: config.Redis{URL: "redis://" + srv.Addr(), Auth: config.RedisAuthToken, TokenARN: vars[config.EnvRedisTokenARN]}}
	getenv, got, err := ResolveSecrets(context.Background(), func(name string) string { return vars[name] }, sm)
	if err != nil || got != token {
		t.Fatalf("resolved %q %v", got, err)
	}
	if signing := strings.Fields(getenv(config.EnvSigningSecrets)); len(signing) != 2 || signing[1] != "whsec_b2xk" {
		t.Fatalf("signing secrets %v", signing)
	}
	rdb, err := RedisClient(cfg.Redis, RedisAuth{Token: got})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("token auth: %v", err)
	}
	noauth, _ := RedisClient(cfg.Redis, RedisAuth{})
	defer noauth.Close()
	if err := noauth.Ping(context.Background()).Err(); err == nil {
		t.Fatal("connected without the token")
	}
	vars[config.EnvRedisTokenARN] = "arn:aws:secretsmanager:eu-west-1:1:secret:missing"
	if _, _, err := ResolveSecrets(context.Background(), func(name string) string { return vars[name] }, sm); err == nil || !strings.Contains(err.Error(), config.EnvRedisTokenARN) || strings.Contains(err.Error(), "whsec") {
		t.Fatalf("missing secret: %v", err)
	}
}

// TestSigningSecretsValidatedBeforeUse: the signing secrets read from
// Secrets Manager reach the configuration before it is validated, so a
// malformed one stops start-up with an error naming the variable (never the
// secret), and good ones are what the loaded configuration holds.
func TestSigningSecretsValidatedBeforeUse(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:1:secret:sign"
	yml := []byte("tenant: /t\nlanes: {quick: {}}\nroutes: {a: {lane: quick, handler: log}}\n")
	load := func(value string) (*config.Config, error) {
		vars := map[string]string{config.EnvSigningSecretsARN: arn, config.EnvSigningSecrets: "whsec_b2xk"}
		getenv, _, err := ResolveSecrets(context.Background(), func(name string) string { return vars[name] }, fakeSecrets{arn: value})
		if err != nil {
			t.Fatal(err)
		}
		return config.Parse(yml, getenv)
	}
	_, err := load("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw not-a-secret-hunter2")
	if err == nil || !strings.Contains(err.Error(), config.EnvSigningSecrets+": secret 2 of 2 is not a Standard Webhooks secret") ||
		strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "MfKQ9r8") {
		t.Fatalf("malformed secret from Secrets Manager: %v", err)
	}
	// The secret named by the ARN wins over HOOKLINE_SIGNING_SECRETS.
	cfg, err := load(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
	if err != nil || len(cfg.SigningSecrets) != 1 || cfg.SigningSecrets[0] != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Fatalf("loaded %d secrets, %v", len(cfg.SigningSecrets), err)
	}
	if _, err := Verifier(cfg); err != nil {
		t.Fatalf("verifier: %v", err)
	}
}
