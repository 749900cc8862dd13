package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"gopkg.in/yaml.v3"
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
// concurrency when one is reserved, a quantum (plus the drain's margin) in
// its timeout, and its key prefix is the one the cache user may touch.
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
	if reserved > 0 && sum > reserved {
		t.Fatalf("%s: lanes want %d drains at once, above the DrainReservedConcurrency default %d", configPath, sum, reserved)
	}
	// The functions run with HOOKLINE_PREFIX = KeyPrefix, which overrides
	// the file's prefix: the two must agree, or the file misleads.
	if def, _ := str(get(root, "Parameters", "KeyPrefix", "Default")); cfg.Prefix != def {
		t.Fatalf("%s: prefix %q, but the KeyPrefix default (HOOKLINE_PREFIX of the functions, and the cache user's key pattern) is %q", configPath, cfg.Prefix, def)
	}
	if margin := time.Duration(cfg.Scheduler.Margin); margin >= 60*time.Second {
		t.Fatalf("%s: scheduler margin %v leaves nothing of the scheduler's 60 s", configPath, margin)
	}
}

// TestConfigEnvReferences checks that every "env:NAME" value of
// hookline.yaml (a route's secret or header) names a variable the template
// gives the functions: the functions resolve them at start-up and refuse to
// start, all three at once, when one is missing.
func TestConfigEnvReferences(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatalf("read %s: %v", configPath, err)
	}
	refs := configEnvReferences(data)
	root := loadTemplate(t)
	for id := range functions {
		declared := map[string]bool{}
		for _, n := range []*yaml.Node{get(root, "Globals", "Function"), get(root, "Resources", id, "Properties")} {
			for _, e := range entries(get(n, "Environment", "Variables")) {
				declared[e.key] = true
			}
		}
		for _, name := range refs {
			if !declared[name] {
				t.Fatalf("%s: env:%s, but %s has no variable %s in template.yaml: it would fail at start-up", configPath, name, id, name)
			}
		}
	}
	// The check itself: a reference is found where the configuration
	// allows one.
	sample := []byte("routes:\n  a: {secret: env:A_SECRET, headers: {Authorization: env:API_AUTH, X: plain}}\n")
	if got := configEnvReferences(sample); !slices.Equal(got, []string{"API_AUTH", "A_SECRET"}) {
		t.Fatalf("configEnvReferences(sample) = %v, want [API_AUTH A_SECRET]", got)
	}
}

// configEnvReferences returns the NAMEs of the "env:NAME" values in a
// configuration file, sorted.
func configEnvReferences(data []byte) []string {
	var names []string
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil
	}
	walk(&doc, nil, func(_ []string, n *yaml.Node) {
		if name, ok := strings.CutPrefix(n.Value, "env:"); ok && n.Kind == yaml.ScalarNode && !slices.Contains(names, name) {
			names = append(names, name)
		}
	})
	slices.Sort(names)
	return names
}
