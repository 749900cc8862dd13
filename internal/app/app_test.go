package app

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/hookline/hookline/shared/handler"
)

// TestUnknownHandlerNamesItsLine: a route naming a handler that is neither
// built in nor registered stops start-up with the setting, its line and
// the nearest known name.
func TestUnknownHandlerNamesItsLine(t *testing.T) {
	cfg, err := config.Parse([]byte("tenant: /t\nlanes: {quick: {}}\nroutes:\n  a: {lane: quick, handler: log}\n  b:\n    lane: quick\n    handler: crm_synk\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewWith(cfg, redistest.Standalone(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := handler.NewRegistry()
	reg.Register("crm-sync", handler.HandlerFunc(nil))
	_, err = a.Routes(reg)
	want := `config: routes.b.handler: "crm_synk" is neither built in (forward, log) nor registered (line 7); did you mean "crm-sync"?`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
}

// TestEmitterUsesNamespaceAndStack: the functions' emitter writes in the
// configured namespace with the configured stack as a dimension.
func TestEmitterUsesNamespaceAndStack(t *testing.T) {
	cfg, err := config.Parse([]byte("tenant: /t\nlanes: {quick: {}}\nroutes: {a: {lane: quick, handler: log}}\nmetrics: {namespace: acme}\n"),
		func(name string) string {
			if name == config.EnvStack {
				return "prod-eu"
			}
			return ""
		})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&App{Config: cfg}).Emitter(&buf).Emit(time.Now(), map[string]string{"Lane": "quick"}, telemetry.Metric{Name: "X"}); err != nil {
		t.Fatal(err)
	}
	l, err := telemetry.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := l.Metric("X"); m.Namespace != "acme" || l.Dims["Stack"] != "prod-eu" {
		t.Fatalf("line %s", buf.String())
	}
}

// TestQueueOptions: the engine gets the configuration's settings, and
// accepts them.
func TestQueueOptions(t *testing.T) {
	yml := "tenant: /t\nlanes: {quick: {}, slow: {}}\nroutes: {a: {lane: quick, handler: log}}\n" +
		"drain: {batch: 25, lease_ttl: 40s, claim_ttl: 90s}\ndedup_window: 1h\ndead_letters: {max_per_key: 500, retention: 168h}\n"
	c, err := config.Parse([]byte(yml), func(name string) string {
		if name == config.EnvPrefix {
			return "x"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	want := queue.Options{
		Prefix:      "x",
		Shards:      16,
		Lanes:       []string{"quick", "slow"},
		DedupWindow: time.Hour,
		LeaseTTL:    40 * time.Second,
		ClaimTTL:    90 * time.Second,
		MaxBatch:    25,

		DeadLetterMax:       500,
		DeadLetterRetention: 7 * 24 * time.Hour,
	}
	if got := queueOptions(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("queueOptions %+v, want %+v", got, want)
	}
	// The engine accepts them (New does not touch Redis).
	if _, err := queue.New(nil, queueOptions(c)); err != nil {
		t.Fatalf("queue.New: %v", err)
	}
}
