package functions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/lambdatest"
	"github.com/hookline/hookline/internal/redistest"
)

// TestInitFailsNamingTheSetting: a function with bad configuration stops at
// init (it never serves an invocation) and its log names the setting.
func TestInitFailsNamingTheSetting(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	noneVerify := filepath.Join(dir, "none.yaml")
	const routes = "tenant: /data/customer_id\nlanes:\n  quick: {concurrency: 2, quantum: 5s}\nroutes:\n  a.b: {lane: %s, handler: log}\n"
	for path, body := range map[string]string{
		good:       strings.Replace(routes, "%s", "quick", 1),
		bad:        strings.Replace(routes, "%s", "medium", 1),
		noneVerify: "verify: none\n" + strings.Replace(routes, "%s", "quick", 1),
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	redisURL := "redis://" + redistest.Standalone(t).Options().Addr
	cases := []struct {
		fn, name string
		env      map[string]string
		want     string
	}{
		{"ingest", "no config", map[string]string{"HOOKLINE_REDIS_URL": redisURL}, "HOOKLINE_CONFIG"},
		{"ingest", "bad lane", map[string]string{"HOOKLINE_CONFIG": bad, "HOOKLINE_REDIS_URL": redisURL}, "routes.a.b.lane"},
		{"ingest", "no secrets", map[string]string{"HOOKLINE_CONFIG": good, "HOOKLINE_REDIS_URL": redisURL}, "HOOKLINE_SIGNING_SECRETS"},
		{"ingest", "no redis", map[string]string{"HOOKLINE_CONFIG": noneVerify}, "HOOKLINE_REDIS_URL"},
		{"drain", "bad redis url", map[string]string{"HOOKLINE_CONFIG": good, "HOOKLINE_REDIS_URL": "http://x"}, "HOOKLINE_REDIS_URL"},
		{"scheduler", "no drain function", map[string]string{"HOOKLINE_CONFIG": good, "HOOKLINE_REDIS_URL": redisURL}, "HOOKLINE_DRAIN_FUNCTION"},
	}
	for _, c := range cases {
		t.Run(c.fn+"/"+c.name, func(t *testing.T) {
			bin := lambdatest.Build(t, "github.com/hookline/hookline/functions/"+c.fn)
			f := lambdatest.Start(t, c.fn, bin, c.env)
			_, err := f.Invoke(context.Background(), "", []byte(`{}`), 10*time.Second)
			if !errors.Is(err, lambdatest.ErrProcessExited) {
				t.Fatalf("invoke = %v; want the process to have exited at init", err)
			}
			if logs := f.Logs(); !strings.Contains(logs, c.want) || !strings.Contains(logs, "cannot start") {
				t.Fatalf("init log does not name %s:\n%s", c.want, logs)
			}
		})
	}
	// verify: none starts without secrets.
	bin := lambdatest.Build(t, "github.com/hookline/hookline/functions/ingest")
	f := lambdatest.Start(t, "ingest", bin, map[string]string{"HOOKLINE_CONFIG": noneVerify, "HOOKLINE_REDIS_URL": redisURL})
	if _, err := f.Invoke(context.Background(), "", []byte(`{"version":"2.0","rawPath":"/healthz","requestContext":{"http":{"method":"GET","path":"/healthz"}}}`), 10*time.Second); err != nil {
		t.Fatalf("ingest with verify: none: %v\n%s", err, f.Logs())
	}
}
