package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck: `hookline check` passes the shipped configurations, lists the
// env: variables the functions need, and fails, naming the route, on what
// would stop the functions at init: a bad setting, and a handler that is
// neither built in nor registered (which only building the routes finds).
func TestCheck(t *testing.T) {
	for _, path := range []string{"../../hookline.yaml", "../../examples/hookline.yaml"} {
		r := runCLI(t, "check", "--config", path)
		out, err := r.out+r.err, r.fail
		if err != nil || !strings.Contains(out, path+": ok: ") {
			t.Fatalf("check %s: %v\n%s", path, err, out)
		}
	}

	const head = "tenant: /data/customer_id\nverify: none\nlanes: {quick: {}}\nroutes:\n"
	write := func(routes string) string {
		p := filepath.Join(t.TempDir(), "hookline.yaml")
		if err := os.WriteFile(p, []byte(head+routes), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, routes, want string
		ok                 bool
	}{
		{"env reference", "  a: {lane: quick, handler: forward, url: 'https://example.com/', secret: env:HOOKLINE_CHECK_TEST_SECRET, headers: {Authorization: env:HOOKLINE_CHECK_TEST_AUTH}}\n",
			"the functions read HOOKLINE_CHECK_TEST_AUTH, HOOKLINE_CHECK_TEST_SECRET at start-up", true},
		{"unknown handler", "  a: {lane: quick, handler: frobnicate}\n", `routes.a.handler: "frobnicate" is neither built in`, false},
		{"unknown lane", "  a: {lane: slow, handler: log}\n", `routes.a.lane: "slow" is not a defined lane`, false},
		{"misspelt setting", "  a: {lane: quick, handler: log, max_attempt: 3}\n", "max_attempt", false},
	}
	for _, tt := range tests {
		r := runCLI(t, "check", "--config", write(tt.routes))
		out, err := r.out+r.err, r.fail
		if (err == nil) != tt.ok {
			t.Fatalf("%s: err %v, want ok %v\n%s", tt.name, err, tt.ok, out)
		}
		if !strings.Contains(out, tt.want) {
			t.Fatalf("%s: output does not say %q:\n%s", tt.name, tt.want, out)
		}
	}
}
