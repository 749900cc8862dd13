package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/hookline/hookline/shared/config"
)

// LoadLambda builds the App of a Lambda function at init: logs through
// lambdacontext (request ids injected; JSON when the function's log format
// is JSON), configuration from HOOKLINE_CONFIG and the environment, then
// Connect.
func LoadLambda() (*App, error) {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Connect(ctx, cfg, logger)
}

// Connect reads the secrets the configuration names from Secrets Manager
// (when their ARNs are set), builds a Redis client with the configured
// authentication (none, AUTH token, or ElastiCache IAM) and the App over it.
// HOOKLINE_REDIS_URL is required.
func Connect(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	if cfg.Redis.URL == "" {
		return nil, fmt.Errorf("app: %s is required (rediss://host:6379 for ElastiCache)", config.EnvRedisURL)
	}
	var auth RedisAuth
	if cfg.SigningSecretsARN != "" || cfg.Redis.TokenARN != "" || cfg.Redis.Auth == config.RedisAuthIAM {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("app: AWS configuration: %w", err)
		}
		if auth.Token, err = ResolveSecrets(ctx, cfg, secretsmanager.NewFromConfig(awsCfg)); err != nil {
			return nil, err
		}
		if cfg.Redis.Auth == config.RedisAuthIAM {
			auth.IAM = &IAMTokens{Signer: awsCfg.Credentials, Region: awsCfg.Region,
				CacheName: cfg.Redis.CacheName, User: cfg.Redis.User, Serverless: cfg.Redis.Serverless}
		}
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
