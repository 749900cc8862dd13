package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/hookline/hookline/internal/config"
)

// LoadLambda builds the App of a Lambda function at init: logs through
// lambdacontext (request ids injected; JSON when the function's log format
// is JSON); the secrets the environment names in Secrets Manager (see
// ResolveSecrets); the configuration from HOOKLINE_CONFIG and the
// environment with them, validated as a whole; then a Redis client with
// the configured authentication and the App over it, as Connect.
func LoadLambda() (*App, error) {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clients := &awsClients{}
	getenv, token, err := ResolveSecrets(ctx, os.Getenv, clients)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	return connect(ctx, cfg, clients, token, logger)
}

// Connect reads the Redis AUTH token from Secrets Manager when
// HOOKLINE_REDIS_TOKEN_ARN is set, builds a Redis client with the
// configured authentication (none, AUTH token, or ElastiCache IAM) and the
// App over it. HOOKLINE_REDIS_URL is required. The signing secrets are not
// read: only ingest needs them, and LoadLambda reads them before it loads
// the configuration, so that it validates them.
func Connect(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	clients := &awsClients{}
	var token string
	if cfg.Redis.URL != "" && cfg.Redis.TokenARN != "" {
		var err error
		if token, err = readSecret(ctx, clients, config.EnvRedisTokenARN, cfg.Redis.TokenARN); err != nil {
			return nil, err
		}
	}
	return connect(ctx, cfg, clients, token, logger)
}

// connect is Connect with the AUTH token, if any, already read.
func connect(ctx context.Context, cfg *config.Config, clients *awsClients, token string, logger *slog.Logger) (*App, error) {
	if cfg.Redis.URL == "" {
		return nil, fmt.Errorf("app: %s is required (rediss://host:6379 for ElastiCache)", config.EnvRedisURL)
	}
	auth := RedisAuth{Token: token}
	if cfg.Redis.Auth == config.RedisAuthIAM {
		awsCfg, err := clients.config(ctx)
		if err != nil {
			return nil, err
		}
		auth.IAM = &IAMTokens{Signer: awsCfg.Credentials, Region: awsCfg.Region,
			CacheName: cfg.Redis.CacheName, User: cfg.Redis.User, Serverless: cfg.Redis.Serverless}
	}
	if cfg.Redis.Auth == config.RedisAuthToken && auth.Token == "" && !strings.Contains(cfg.Redis.URL, "@") {
		return nil, fmt.Errorf("app: %s is token: give %s or a password in %s", config.EnvRedisAuth, config.EnvRedisTokenARN, config.EnvRedisURL)
	}
	rdb, err := RedisClient(cfg.Redis, auth)
	if err != nil {
		return nil, err
	}
	return NewWith(cfg, rdb, logger)
}

// InitFailed logs why a function cannot start and exits, so Lambda reports an
// init error that names the setting. Only mains call it, never a handler.
func InitFailed(function string, err error) {
	slog.Error("hookline: "+function+" cannot start", "err", err.Error())
	os.Exit(1)
}
