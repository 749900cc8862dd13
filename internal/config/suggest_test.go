package config

import (
	"strings"
	"testing"
)

// TestErrorsNameTheLine: every problem with a setting of the file names its
// line, a missing setting the line of the setting that should hold it, and
// the environment's problems none.
func TestErrorsNameTheLine(t *testing.T) {
	yml := `tenant: /t
lanes:
  quick: {concurrency: -1}
routes:
  a:
    lane: medium
    handler: forward
  b: {lane: quick, handler: "my handler"}
metrics: {namespace: "AWS/Lambda"}
`
	_, err := Parse([]byte(yml), env(map[string]string{EnvRedisURL: "http://h"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"config: lanes.quick.concurrency: -1 must be at least 1 (line 3)\n",
		`config: routes.a.lane: "medium" is not a defined lane (line 6)` + "\n",
		"config: routes.a.url: required by the forward handler (line 5)\n",
		`config: routes.b.handler: "my handler": want forward, log or a handler name of 1..64 of a-z, A-Z, 0-9, '_', '.', '-' (line 8)` + "\n",
		`config: metrics.namespace: "AWS/Lambda": namespaces starting with AWS/ are AWS's own (line 9)` + "\n",
		"config: HOOKLINE_REDIS_URL: scheme must be redis or rediss",
	} {
		if !strings.Contains(err.Error()+"\n", want) {
			t.Errorf("error:\n%v\nwant a line:\n%s", err, want)
		}
	}
	if strings.Contains(err.Error(), "rediss (line") {
		t.Errorf("an environment variable got a line: %v", err)
	}
}

// TestUnknownSettingSuggestsTheNearest: a misspelt setting name gets the
// nearest known name of its mapping, and none when nothing is close.
func TestUnknownSettingSuggestsTheNearest(t *testing.T) {
	for _, tc := range []struct{ yml, want string }{
		{minimalYAML + "shard: 4\n", `config: shard: unknown setting (line 6); did you mean "shards"?`},
		{minimalYAML + "dedup-window: 1h\n", `config: dedup-window: unknown setting (line 6); did you mean "dedup_window"?`},
		{minimalYAML + "mertics: {stack: x}\n", `config: mertics: unknown setting (line 6); did you mean "metrics"?`},
		{minimalYAML + "  r: {lane: main, handler: log, max_attempt: 3}\n", `config: routes.r.max_attempt: unknown setting (line 6); did you mean "max_attempts"?`},
		{"tenant: /t\nlanes:\n  main: {concurency: 2}\nroutes: {r: {lane: main, handler: log}}\n", `config: lanes.main.concurency: unknown setting (line 3); did you mean "concurrency"?`},
		{minimalYAML + "verify: {scheme: hmac, header: X, encodng: hex}\n", `did you mean "encoding"?`},
		{minimalYAML + "scheduler: {metrics_evry: 5s}\n", `did you mean "metrics_every"?`},
		{minimalYAML + "drain: {lease: 5s}\n", `config: drain.lease: unknown setting (line 6)`},
		{minimalYAML + "metrics: {namespcae: x}\n", `did you mean "namespace"?`},
	} {
		_, err := Parse([]byte(tc.yml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	_, err := Parse([]byte(minimalYAML+"retries: 3\n"), nil)
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a name far from every setting got a suggestion: %v", err)
	}
}

func TestNearest(t *testing.T) {
	known := []string{"forward", "log", "crm-sync"}
	for word, want := range map[string]string{
		"foward": "forward", "Forward": "forward", "fwd": "", "lg": "log", "crm_sync": "crm-sync",
		"crmsync": "crm-sync", "logs": "log", "slack": "", "": "",
	} {
		if got := Nearest(word, known); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", word, got, want)
		}
	}
}

// TestMetricsSettings: the namespace and stack come from the file, the
// stack from HOOKLINE_STACK first, and bad values name their source.
func TestMetricsSettings(t *testing.T) {
	c := mustParse(t, minimalYAML+"metrics: {namespace: acme/hooks, stack: staging}\n", nil)
	if c.Metrics.Namespace != "acme/hooks" || c.Metrics.Stack != "staging" {
		t.Fatalf("metrics %+v", c.Metrics)
	}
	c = mustParse(t, minimalYAML+"metrics: {stack: staging}\n", env(map[string]string{EnvStack: "hookline-prod"}))
	if c.Metrics.Namespace != "hookline" || c.Metrics.Stack != "hookline-prod" {
		t.Fatalf("metrics %+v", c.Metrics)
	}
	_, err := Parse([]byte(minimalYAML), env(map[string]string{EnvStack: "a b"}))
	if err == nil || !strings.Contains(err.Error(), `config: HOOKLINE_STACK: "a b": want 1..255 printable`) {
		t.Fatalf("bad stack: %v", err)
	}
	_, err = Parse([]byte(minimalYAML+"metrics: {namespace: \"hooks!\"}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `config: metrics.namespace: "hooks!": want 1..255`) {
		t.Fatalf("bad namespace: %v", err)
	}
}

// TestSettingError: errors found after Load, such as an unknown handler,
// read like Load's and name the line.
func TestSettingError(t *testing.T) {
	c := mustParse(t, minimalYAML+"  \"a/b\": {lane: main, handler: mine}\n", nil)
	got := c.SettingError(RouteSetting("ping", "handler"), `"fwd" is not registered`, DidYouMean("fwd", []string{"fwd2"})).Error()
	if got != `config: routes.ping.handler: "fwd" is not registered (line 5); did you mean "fwd2"?` {
		t.Fatalf("got %q", got)
	}
	got = c.SettingError(RouteSetting("a/b", "handler"), "x", "").Error()
	if got != `config: routes["a/b"].handler: x (line 6)` {
		t.Fatalf("got %q", got)
	}
	got = c.SettingError(RouteSetting("a/b", "url"), "required", "").Error()
	if got != `config: routes["a/b"].url: required (line 6)` {
		t.Fatalf("got %q", got)
	}
}
