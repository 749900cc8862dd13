package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Secrets planted in the configuration; none may appear in any output.
const (
	signingA   = "whsec_c2lnbmluZy1zZWNyZXQtQQ=="
	signingB   = "whsec_c2lnbmluZy1zZWNyZXQtQg=="
	routeSec   = "whsec_cm91dGUtc2VjcmV0"
	headerTok  = "Bearer hdr-t0ken-xyz"
	redisPass  = "redis-pa55word"
	urlPass    = "url-pa55word"
	queryToken = "qtoken123"
)

func secretConfig(t *testing.T) *Config {
	t.Helper()
	yml := exampleYAML + `
  other:
    lane: slow
    handler: forward
    url: https://user:` + urlPass + `@api.example.com/v1/hooks?token=` + queryToken + `&v=2
    secret: env:ROUTE_SECRET
    headers: {Authorization: env:HEADER_TOKEN, X-Plain: literal}
`
	return mustParse(t, yml, env(map[string]string{
		"ROUTE_SECRET":    routeSec,
		"HEADER_TOKEN":    headerTok,
		EnvSigningSecrets: signingA + " " + signingB,
		EnvRedisURL:       "rediss://default:" + redisPass + "@cache.example.com:6379",
	}))
}

func assertRedacted(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{signingA, signingB, "c2lnbmluZy1zZWNyZXQt", routeSec, "cm91dGUtc2VjcmV0", headerTok, "hdr-t0ken", redisPass, urlPass, queryToken} {
		if strings.Contains(out, s) {
			t.Fatalf("%s holds secret %q:\n%s", what, s, out)
		}
	}
}

func TestLogValueRedacts(t *testing.T) {
	c := secretConfig(t)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("loaded", "config", c, "config_value", *c, "route", c.Routes["other"], "redis", c.Redis)
	out := buf.String()
	assertRedacted(t, "JSON log", out)

	var rec struct {
		Config struct {
			Shards int `json:"shards"`
			Redis  struct {
				URL     string `json:"url"`
				Cluster bool   `json:"cluster"`
			} `json:"redis"`
			SigningSecrets string `json:"signing_secrets"`
			Routes         map[string]struct {
				URL     string            `json:"url"`
				Rate    string            `json:"rate"`
				Secret  string            `json:"secret"`
				Headers map[string]string `json:"headers"`
			} `json:"routes"`
			Lanes map[string]struct {
				Quantum string `json:"quantum"`
			} `json:"lanes"`
		} `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("decode log line: %v\n%s", err, out)
	}
	cfg := rec.Config
	if cfg.Shards != 16 || cfg.Lanes["quick"].Quantum != "20s" || cfg.Routes["post-create"].Rate != "2/s" {
		t.Fatalf("settings missing from log: %s", out)
	}
	if cfg.Redis.URL != "rediss://default:xxxxx@cache.example.com:6379" {
		t.Fatalf("redis url logged as %q", cfg.Redis.URL)
	}
	if cfg.SigningSecrets != "2 [redacted]" {
		t.Fatalf("signing secrets logged as %q", cfg.SigningSecrets)
	}
	other := cfg.Routes["other"]
	if other.Secret != redacted || other.Headers["Authorization"] != redacted || other.Headers["X-Plain"] != redacted {
		t.Fatalf("route logged as %+v", other)
	}
	if other.URL != "https://user:xxxxx@api.example.com/v1/hooks?token=xxxxx&v=xxxxx" {
		t.Fatalf("route url logged as %q", other.URL)
	}
}

func TestStringRedacts(t *testing.T) {
	c := secretConfig(t)
	r := c.Routes["other"]
	for what, out := range map[string]string{
		"String":       c.String(),
		"%v pointer":   fmt.Sprintf("%v", c),
		"%+v value":    fmt.Sprintf("%+v", *c),
		"%#v pointer":  fmt.Sprintf("%#v", c),
		"%#v value":    fmt.Sprintf("%#v", *c),
		"%s":           fmt.Sprintf("%s", c),
		"route %+v":    fmt.Sprintf("%+v", r),
		"route %#v":    fmt.Sprintf("%#v", r),
		"redis %+v":    fmt.Sprintf("%+v", c.Redis),
		"redis %#v":    fmt.Sprintf("%#v", c.Redis),
		"text handler": textLog(c),
	} {
		assertRedacted(t, what, out)
		if !strings.Contains(out, "cache.example.com") && !strings.Contains(out, "api.example.com") {
			t.Fatalf("%s shows no settings: %s", what, out)
		}
	}
	s := c.String()
	for _, want := range []string{"shards=16", "tenant=/data/customer_id", "quick={concurrency=64 quantum=20s}", "rate=2/s", `signing_secrets="2 [redacted]"`, "secret=[redacted]"} {
		if !strings.Contains(s, want) {
			t.Fatalf("String() lacks %q:\n%s", want, s)
		}
	}
}

func textLog(c *Config) string {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "config", c)
	return buf.String()
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"redis://localhost:6379": "redis://localhost:6379",
		"redis://:pw@h:6379/2":   "redis://:xxxxx@h:6379/2",
		"https://h/p?a=1#frag":   "https://h/p?a=xxxxx",
		"redis://:pw@h:port":     "[unparsable URL [redacted]]",
		"https://user@h/hooks":   "https://user@h/hooks",
	} {
		if got := redactURL(in); got != want {
			t.Fatalf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
