package app

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/hookline/hookline/shared/config"
)

// LoadLambda builds the App of a Lambda function at init: JSON-or-text logs
// through lambdacontext (request ids injected), configuration from
// HOOKLINE_CONFIG and the environment.
func LoadLambda() (*App, error) {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg, logger)
}

// InitFailed logs why a function cannot start and exits, so Lambda reports an
// init error that names the setting. Only mains call it, never a handler.
func InitFailed(function string, err error) {
	slog.Error("hookline: "+function+" cannot start", "err", err.Error())
	os.Exit(1)
}
