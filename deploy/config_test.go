package deploy

import (
	"os"
	"testing"
	"time"

	"github.com/hookline/hookline/shared/config"
)

// configPath is the configuration the build ships with every function.
const configPath = "../hookline.yaml"

// loadConfig parses hookline.yaml as the functions do at start-up, with no
// environment.
func loadConfig(t *testing.T) *config.Config {
	t.Helper()
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatalf("read %s: %v", configPath, err)
	}
	cfg, err := config.Parse(data, nil)
	if err != nil {
		t.Fatalf("%s:\n%v", configPath, err)
	}
	return cfg
}

// TestConfigFile checks hookline.yaml, and that it fits the template's
// defaults: the lanes' drains fit in the drain function's reserved
// concurrency, and a quantum (plus the drain's margin) in its timeout.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	root := loadTemplate(t)

	for _, lane := range []string{"quick", "slow"} {
		if _, ok := cfg.Lanes[lane]; !ok {
			t.Fatalf("%s: lane %s missing", configPath, lane)
		}
	}
	handlers := map[string]bool{}
	for _, r := range cfg.Routes {
		handlers[r.Handler] = true
	}
	if !handlers[config.HandlerForward] || !handlers[config.HandlerLog] {
		t.Fatalf("%s: want example routes with the forward and log handlers, have %v", configPath, handlers)
	}

	reserved := paramDefault(t, root, "DrainReservedConcurrency")
	drainTimeout := time.Duration(paramDefault(t, root, "DrainTimeout")) * time.Second
	sum := 0
	for name, l := range cfg.Lanes {
		sum += l.Concurrency
		if need := time.Duration(l.Quantum) + time.Duration(cfg.Drain.Margin); need >= drainTimeout {
			t.Fatalf("%s: lane %s: quantum %v plus drain margin %v does not fit the DrainTimeout default %v", configPath, name, l.Quantum, cfg.Drain.Margin, drainTimeout)
		}
	}
	if sum > reserved {
		t.Fatalf("%s: lanes want %d drains at once, above the DrainReservedConcurrency default %d", configPath, sum, reserved)
	}
	if margin := time.Duration(cfg.Scheduler.Margin); margin >= 60*time.Second {
		t.Fatalf("%s: scheduler margin %v leaves nothing of the scheduler's 60 s", configPath, margin)
	}
}
