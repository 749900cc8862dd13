package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/schedule"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"
)

// configDoc is the configuration's documentation: its package comment.
func configDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../config/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSays fails unless the configuration's documentation holds phrase,
// which the test builds from the owner's constants. Line breaks and comment
// markers of the source count as one space.
func docSays(t *testing.T, doc, phrase string) {
	t.Helper()
	flat := strings.Join(strings.Fields(strings.ReplaceAll(doc, "\n//", " ")), " ")
	if !strings.Contains(flat, phrase) {
		t.Errorf("config/doc.go does not say %q", phrase)
	}
}

// acceptsConfig parses a small configuration with yml appended to its
// lanes and routes, and env, and reports whether it is valid.
func acceptsConfig(lanes, routes string, env map[string]string) bool {
	yml := "tenant: /data/t\nlanes: {" + lanes + "}\nroutes: {" + routes + "}\n"
	_, err := config.Parse([]byte(yml), func(name string) string { return env[name] })
	return err == nil
}

// TestRulesHaveOneOwner walks every naming rule on its edge values and shows
// that the configuration, the engine (queue, ratelimit), webhook parsing
// and the documentation accept exactly what the owner's function does. The
// want column pins the rule itself.
func TestRulesHaveOneOwner(t *testing.T) {
	doc := configDoc(t)
	ctx := context.Background()
	rdb := redistest.Standalone(t)
	e, err := queue.New(rdb, queue.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(rdb, ratelimit.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	// enqueues reports whether the engine stores an item, and checks that a
	// refusal is the owner's error.
	enqueues := func(it queue.Item, want error) bool {
		t.Helper()
		it.ReceivedAt, it.Body = time.Now(), []byte(`{}`)
		_, err := e.Enqueue(ctx, queue.LaneDefault, &it)
		if err != nil && !errors.Is(err, want) {
			t.Fatalf("Enqueue(%q, %q, %q): %v, want nil or %v", it.Tenant, it.Code, it.ID, err, want)
		}
		return err == nil
	}
	// parses reports whether webhook.Parse takes a body with code and
	// tenant.
	parses := func(code, tenant string) bool {
		body, _ := json.Marshal(map[string]any{"code": code, "data": map[string]string{"t": tenant}})
		_, err := webhook.Parse(body, "/data/t")
		return err == nil
	}
	check := func(rule, value string, want bool, got map[string]bool) {
		t.Helper()
		for layer, ok := range got {
			if ok != want {
				t.Errorf("%s %q (%d bytes): %s accepts it: %v, want %v", rule, value, len(value), layer, ok, want)
			}
		}
	}

	t.Run("lane", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			want bool
		}{
			{"a", true}, {"quick-1_x", true}, {strings.Repeat("l", queue.MaxLaneLen), true},
			{strings.Repeat("l", queue.MaxLaneLen+1), false}, {"", false},
			{"a:b", false}, {"a{b}", false}, {"Quick", false}, {"a b", false}, {"é", false}, {"a.b", false},
		} {
			_, engineErr := queue.New(nil, queue.Options{Lanes: []string{tc.name}})
			check("lane", tc.name, tc.want, map[string]bool{
				"queue.ValidLane": queue.ValidLane(tc.name),
				"config":          acceptsConfig(fmt.Sprintf("%q: {}", tc.name), fmt.Sprintf("r: {lane: %q, handler: log}", tc.name), nil),
				"queue.New":       engineErr == nil,
			})
		}
		docSays(t, doc, fmt.Sprintf("lane name (1..%d of a-z, 0-9, '_', '-')", queue.MaxLaneLen))
	})

	t.Run("prefix", func(t *testing.T) {
		dummy := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never called
		defer dummy.Close()
		for _, tc := range []struct {
			prefix string
			want   bool
		}{
			{"hl", true}, {"x-_9", true}, {strings.Repeat("p", queue.MaxPrefixLen), true},
			{strings.Repeat("p", queue.MaxPrefixLen+1), false},
			{"HL", false}, {"a:b", false}, {"a b", false}, {"a{", false}, {"a.b", false},
		} {
			_, engineErr := queue.New(nil, queue.Options{Prefix: tc.prefix})
			_, limErr := ratelimit.New(dummy, ratelimit.Options{Prefix: tc.prefix})
			check("prefix", tc.prefix, tc.want, map[string]bool{
				"queue.ValidPrefix": queue.ValidPrefix(tc.prefix),
				"config":            acceptsConfig("q: {}", "r: {lane: q, handler: log}", map[string]string{config.EnvPrefix: tc.prefix}),
				"queue.New":         engineErr == nil,
				"ratelimit.New":     limErr == nil,
			})
		}
		docSays(t, doc, fmt.Sprintf("prefix (default %q, 1..%d of a-z, 0-9, '_', '-')", queue.PrefixDefault, queue.MaxPrefixLen))
	})

	t.Run("code", func(t *testing.T) {
		for _, tc := range []struct {
			code string
			want bool
		}{
			{"c", true}, {"post.create", true}, {"a:b", true}, {strings.Repeat("c", webhook.MaxCodeLen), true},
			{strings.Repeat("c", webhook.MaxCodeLen+1), false}, {"", false},
			{"a{b", false}, {"a}b", false}, {"a b", false}, {"a\tb", false}, {"é", false},
		} {
			got := map[string]bool{
				"webhook.ValidateCode": webhook.ValidateCode(tc.code) == nil,
				"queue.Enqueue":        enqueues(queue.Item{ID: "i", Tenant: "t", Code: tc.code}, webhook.ErrInvalidCode),
				"config":               acceptsConfig("q: {}", fmt.Sprintf("%q: {lane: q, handler: log}", tc.code), nil),
			}
			if tc.code != "" { // an empty code is missing, not invalid
				got["webhook.Parse"] = parses(tc.code, "t")
			}
			check("code", tc.code, tc.want, got)
		}
		docSays(t, doc, fmt.Sprintf("An event code is 1..%d printable ASCII characters without space, '{' or '}'", webhook.MaxCodeLen))
	})

	t.Run("tenant", func(t *testing.T) {
		for _, tc := range []struct {
			tenant string
			want   bool
		}{
			{"t", true}, {"cust_42", true}, {strings.Repeat("t", webhook.MaxTenantLen), true},
			{strings.Repeat("t", webhook.MaxTenantLen+1), false},
			{"a:b", false}, {"a{b", false}, {"a b", false}, {"é", false},
		} {
			_, keysErr := e.TenantKeys(ctx, tc.tenant)
			if keysErr != nil && !errors.Is(keysErr, webhook.ErrInvalidTenant) {
				t.Fatalf("TenantKeys(%q): %v", tc.tenant, keysErr)
			}
			check("tenant", tc.tenant, tc.want, map[string]bool{
				"webhook.ValidateTenant": webhook.ValidateTenant(tc.tenant) == nil,
				"webhook.Parse":          parses("c", tc.tenant),
				"queue.Enqueue":          enqueues(queue.Item{ID: "i", Tenant: tc.tenant, Code: "c"}, webhook.ErrInvalidTenant),
				"queue.TenantKeys":       keysErr == nil,
			})
		}
	})

	t.Run("id", func(t *testing.T) {
		for _, tc := range []struct {
			id   string
			want bool
		}{
			{"i", true}, {"msg_2Lx9", true}, {queue.NewID(time.Now()), true}, {strings.Repeat("i", webhook.MaxIDLen), true},
			{strings.Repeat("i", webhook.MaxIDLen+1), false}, // "" makes the engine generate one
			{"a:b", false}, {"a{b", false}, {"a b", false}, {"é", false},
		} {
			check("id", tc.id, tc.want, map[string]bool{
				"webhook.ValidateID": webhook.ValidateID(tc.id) == nil,
				"queue.Enqueue":      enqueues(queue.Item{ID: tc.id, Tenant: "t", Code: "c"}, webhook.ErrInvalidID),
			})
		}
	})

	t.Run("rate", func(t *testing.T) {
		for _, tc := range []struct {
			text string
			rate ratelimit.Rate
			want bool
		}{
			{"0/s", ratelimit.Rate{N: 0, Per: time.Second}, false},
			{"1/s", ratelimit.Rate{N: 1, Per: time.Second}, true},
			{"1000000/s", ratelimit.Rate{N: ratelimit.MaxRateN, Per: time.Second}, true},
			{"1000001/s", ratelimit.Rate{N: ratelimit.MaxRateN + 1, Per: time.Second}, false},
			{"1/500us", ratelimit.Rate{N: 1, Per: 500 * time.Microsecond}, false},
			{"1/1ms", ratelimit.Rate{N: 1, Per: ratelimit.MinRatePer}, true},
			{"1/24h", ratelimit.Rate{N: 1, Per: ratelimit.MaxRatePer}, true},
			{"1/25h", ratelimit.Rate{N: 1, Per: 25 * time.Hour}, false},
		} {
			parsed, parseErr := ratelimit.ParseRate(tc.text)
			if parseErr == nil && parsed != tc.rate {
				t.Fatalf("ParseRate(%q) = %+v, want %+v", tc.text, parsed, tc.rate)
			}
			_, reserveErr := lim.Reserve(ctx, "cred", "https://example.test/"+tc.text, tc.rate, 0)
			if reserveErr != nil && !errors.Is(reserveErr, ratelimit.ErrInvalidRate) {
				t.Fatalf("Reserve(%v): %v", tc.rate, reserveErr)
			}
			check("rate", tc.text, tc.want, map[string]bool{
				"ratelimit.ParseRate": parseErr == nil,
				"config":              acceptsConfig("q: {}", fmt.Sprintf("r: {lane: q, handler: log, rate: %q}", tc.text), nil),
				"Limiter.Reserve":     reserveErr == nil,
			})
		}
		docSays(t, doc, fmt.Sprintf("N is 1..%d and the period %s..%s", ratelimit.MaxRateN, config.Duration(ratelimit.MinRatePer), config.Duration(ratelimit.MaxRatePer)))
	})
}

// TestDefaultsHaveOneOwner: every default of the configuration is its
// owner's constant, in the loaded configuration, in the parts built from it
// and in the documentation (its prose and its complete example file).
func TestDefaultsHaveOneOwner(t *testing.T) {
	doc := configDoc(t)
	cfg, err := config.Parse([]byte("tenant: /t\nlanes: {q: {}}\nroutes: {r: {lane: q, handler: log}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	lane, route := cfg.Lanes["q"], cfg.Routes["r"]
	dur := func(d config.Duration) time.Duration { return time.Duration(d) }
	tests := []struct {
		// section is the heading or sentence of doc.go that the setting's
		// prose follows; path is its place in the example file.
		section, path string
		got, want     any
	}{
		{"# Top-level", "shards", cfg.Shards, queue.ShardsDefault},
		{"# Top-level", "prefix", cfg.Prefix, queue.PrefixDefault},
		{"# Top-level", "verify", string(cfg.Verify.Scheme), string(config.SchemeDefault)},
		{"# Top-level", "max_body", cfg.MaxBody, int64(ingest.MaxBodyDefault)},
		{"# Top-level", "dedup_window", dur(cfg.DedupWindow), queue.DedupWindowDefault},
		{"# Lanes", "lanes.quick.concurrency", lane.Concurrency, config.ConcurrencyDefault},
		{"# Lanes", "lanes.quick.quantum", dur(lane.Quantum), drain.QuantumDefault},
		{"# Routes", "routes.post-create.max_attempts", route.MaxAttempts, drain.MaxAttemptsDefault},
		{"# Routes", "routes.post-create.on_exhausted", string(route.OnExhausted), string(drain.PolicyDefault)},
		{"# Routes", "routes.post-create.timeout", dur(route.Timeout), drain.TimeoutDefault},
		{"# Verify", "verify.tolerance", dur(cfg.Verify.Tolerance), webhook.ToleranceDefault},
		{"# Dead letters", "dead_letters.max_per_key", cfg.DeadLetters.MaxPerKey, queue.DeadLetterMaxDefault},
		{"# Dead letters", "dead_letters.retention", dur(cfg.DeadLetters.Retention), queue.DeadLetterRetentionDefault},
		{"scheduler tunes", "scheduler.poll", dur(cfg.Scheduler.Poll), schedule.PollDefault},
		{"scheduler tunes", "scheduler.margin", dur(cfg.Scheduler.Margin), schedule.MarginDefault},
		{"scheduler tunes", "scheduler.lease_ttl", dur(cfg.Scheduler.LeaseTTL), schedule.SingletonTTLDefault},
		{"scheduler tunes", "scheduler.metrics_every", dur(cfg.Scheduler.MetricsEvery), schedule.MetricsEveryDefault},
		{"drain tunes", "drain.batch", cfg.Drain.Batch, drain.BatchDefault},
		{"drain tunes", "drain.lease_ttl", dur(cfg.Drain.LeaseTTL), queue.LeaseTTLDefault},
		{"drain tunes", "drain.claim_ttl", dur(cfg.Drain.ClaimTTL), queue.ClaimTTLDefault},
		{"drain tunes", "drain.margin", dur(cfg.Drain.Margin), drain.MarginDefault},
		{"drain tunes", "drain.max_rate_wait", dur(cfg.Drain.MaxRateWait), drain.MaxRateWaitDefault},
		{"drain tunes", "drain.rate_margin", dur(cfg.Drain.RateMargin), ratelimit.MarginDefault},
		{"# Metrics", "metrics.namespace", cfg.Metrics.Namespace, telemetry.NamespaceDefault},
		{"# Metrics", "metrics.stack", cfg.Metrics.Stack, config.StackDefault},
	}
	example := exampleFile(t, doc)
	// The example file shows two lanes of their own, and verify as a
	// scheme name.
	notInExample := map[string]bool{"lanes.quick.concurrency": true, "verify.tolerance": true}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: loaded default %v, want the owner's %v", tc.path, tc.got, tc.want)
		}
		name := tc.path[strings.LastIndexByte(tc.path, '.')+1:]
		prose, ok := proseDefault(doc, tc.section, name)
		if !ok {
			t.Errorf("%s: config/doc.go has no %q after %q", tc.path, name+" (default ...", tc.section)
		} else if v, err := docValue(prose, tc.want); err != nil || v != tc.want {
			t.Errorf("%s: config/doc.go says default %q, want the owner's %v (%v)", tc.path, prose, tc.want, err)
		}
		if notInExample[tc.path] {
			continue
		}
		if ex, ok := example[tc.path]; !ok {
			t.Errorf("%s: missing from config/doc.go's example file", tc.path)
		} else if v, err := docValue(ex, tc.want); err != nil || v != tc.want {
			t.Errorf("%s: config/doc.go's example file shows %q, want the owner's default %v (%v)", tc.path, ex, tc.want, err)
		}
	}

	// The parts built from a default configuration use the same values as
	// the parts built with no options at all.
	e, err := queue.New(nil, queueOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	bare, err := queue.New(nil, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, want := e.Options(), bare.Options()
	if got.Prefix != want.Prefix || got.Shards != want.Shards || got.DedupWindow != want.DedupWindow ||
		got.LeaseTTL != want.LeaseTTL || got.ClaimTTL != want.ClaimTTL ||
		got.DeadLetterMax != want.DeadLetterMax || got.DeadLetterRetention != want.DeadLetterRetention {
		t.Errorf("engine of the default configuration %+v, engine of no options %+v", got, want)
	}
	a, err := NewWith(cfg, redistest.Standalone(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Routes(nil); err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(a.Redis, ratelimit.Options{Prefix: cfg.Prefix, Margin: time.Duration(cfg.Drain.RateMargin)})
	if err != nil {
		t.Fatal(err)
	}
	dummy, _ := ratelimit.New(a.Redis, ratelimit.Options{})
	if lim.Options().Margin != dummy.Options().Margin || lim.Options().Prefix != dummy.Options().Prefix {
		t.Errorf("limiter of the default configuration %+v, of no options %+v", lim.Options(), dummy.Options())
	}
}

// proseDefault returns X of the first "name (default X" after section in
// doc, up to its first ',', ';' or ')'.
func proseDefault(doc, section, name string) (string, bool) {
	i := strings.Index(doc, section)
	if i < 0 {
		return "", false
	}
	m := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + ` \(default ([^,;)]+)`).FindStringSubmatch(doc[i:])
	if m == nil {
		return "", false
	}
	return strings.TrimSpace(m[1]), true
}

// exampleFile returns the settings of the complete file in doc, by path
// ("drain.batch"), as written.
func exampleFile(t *testing.T, doc string) map[string]string {
	t.Helper()
	start := strings.Index(doc, "// A complete file.")
	end := strings.Index(doc, "// An absent setting")
	if start < 0 || end < start {
		t.Fatal("config/doc.go: no example file")
	}
	var lines []string
	for _, l := range strings.Split(doc[start:end], "\n") {
		if s, ok := strings.CutPrefix(l, "//\t"); ok {
			lines = append(lines, s)
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), &root); err != nil || len(root.Content) == 0 {
		t.Fatalf("config/doc.go: the example file is not YAML: %v", err)
	}
	out := map[string]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], strings.TrimPrefix(path+"."+n.Content[i].Value, "."))
			}
		case yaml.ScalarNode:
			out[path] = n.Value
		}
	}
	walk(root.Content[0], "")
	return out
}

// docValue reads s, a default as the documentation writes it, as a value
// of want's type: "16", "\"hl\"", "24h", "720h, 30 days", "256KiB".
func docValue(s string, want any) (any, error) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	switch want.(type) {
	case int:
		return strconv.Atoi(s)
	case int64:
		if kib, ok := strings.CutSuffix(s, "KiB"); ok {
			n, err := strconv.ParseInt(kib, 10, 64)
			return n << 10, err
		}
		return strconv.ParseInt(s, 10, 64)
	case time.Duration:
		return time.ParseDuration(s)
	}
	return s, nil
}
