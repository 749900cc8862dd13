package functions

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/lambdatest"
	"github.com/redis/go-redis/v9"
)

// stack is the three real functions wired as on AWS: ingest, a pool of
// drain environments behind a fake Lambda Invoke endpoint, and the scheduler,
// whose AWS SDK reaches that endpoint through AWS_ENDPOINT_URL_LAMBDA.
type stack struct {
	ingest, scheduler *lambdatest.Function
	drains            *lambdatest.Pool
	ep                *lambdatest.InvokeEndpoint
}

// startStack builds the functions (once per test binary), writes cfg as
// their configuration, and starts them on rdb with the given signing
// secrets and drains drain environments.
func startStack(t *testing.T, rdb redis.UniversalClient, cfg, secrets string, drains int) *stack {
	t.Helper()
	bins := map[string]string{}
	for _, fn := range []string{"ingest", "drain", "scheduler"} {
		bins[fn] = lambdatest.Build(t, "github.com/hookline/hookline/functions/"+fn)
	}
	cfgPath := filepath.Join(t.TempDir(), "hookline.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := redisEnv(rdb)
	env["HOOKLINE_CONFIG"] = cfgPath
	env["HOOKLINE_SIGNING_SECRETS"] = secrets
	env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
	st := &stack{
		ingest: lambdatest.Start(t, "ingest", bins["ingest"], env),
		drains: lambdatest.StartPool(t, "drain", bins["drain"], env, drains),
		ep:     lambdatest.NewInvokeEndpoint(t),
	}
	st.ep.Register("hookline-drain", lambdatest.Handler(st.drains, 30*time.Second))
	env["HOOKLINE_DRAIN_FUNCTION"] = "hookline-drain"
	env["AWS_ENDPOINT_URL_LAMBDA"] = st.ep.URL()
	st.scheduler = lambdatest.Start(t, "scheduler", bins["scheduler"], env)
	return st
}
