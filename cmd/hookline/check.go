package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/schedule"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// checkPlaceholder stands in, during `hookline check`, for the value of an
// environment variable that the configuration names (env:NAME) and this
// shell does not set: the deployed functions read the real one. It is a
// well-formed Standard Webhooks secret, so it passes where a route's secret
// is expected.
const checkPlaceholder = "whsec_aG9va2xpbmUgY2hlY2sgcGxhY2Vob2xkZXIgc2VjcmV0"

func newCheckCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check a configuration file as the three functions do at start-up, without AWS or Redis",
		Long: `Loads the configuration file the way the Lambda functions do when they start
(every setting, every route's handler, the ingest server, the drainer and the
scheduler) and reports every problem, so that a bad route is caught before a
deployment rather than by all three functions failing at init.

What needs AWS or Redis is not checked: the signing secret and the cache's
credentials. A value written env:NAME is taken from this shell when set;
otherwise the check goes on with a placeholder and lists NAME, which the
functions need in their environment (template.yaml).

` + "`make deploy`" + ` runs it on hookline.yaml before sam deploy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.OutOrStdout(), cmp.Or(cfgPath, os.Getenv(config.EnvConfig), defaultOpsConfig), os.Getenv)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (default $HOOKLINE_CONFIG, else "+defaultOpsConfig+")")
	return cmd
}

// runCheck checks the configuration file at path, reading the environment
// through getenv, and prints a summary to out.
func runCheck(out io.Writer, path string, getenv func(string) string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	refs := envReferences(data)
	var placeholders []string
	cfg, err := config.Parse(data, func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		// Ingest refuses to start without signing secrets; on AWS they
		// come from Secrets Manager, which is not asked here. The
		// placeholder goes through validation like a real secret.
		if name == config.EnvSigningSecrets {
			return checkPlaceholder
		}
		if !slices.Contains(refs, name) {
			return ""
		}
		if !slices.Contains(placeholders, name) {
			placeholders = append(placeholders, name)
		}
		return checkPlaceholder
	})
	if err != nil {
		return fmt.Errorf("%s:\n%w", path, err)
	}
	// The parts the functions build at init. The client connects lazily and
	// is never used.
	rdb := redis.NewClient(&redis.Options{Addr: "hookline-check.invalid:6379"})
	a, err := app.NewWith(cfg, rdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer a.Close()
	if _, err := a.Ingest(); err != nil {
		return fmt.Errorf("%s: ingest: %w", path, err)
	}
	if _, err := a.Drainer(nil); err != nil {
		return fmt.Errorf("%s: drain: %w", path, err)
	}
	nop := schedule.InvokerFunc(func(context.Context, queue.Lease) error { return nil })
	if _, err := a.Scheduler(nop, "check", nil); err != nil {
		return fmt.Errorf("%s: scheduler: %w", path, err)
	}

	handlers := map[string]int{}
	for _, r := range cfg.Routes {
		handlers[r.Handler]++
	}
	var hs, lanes []string
	for _, name := range slices.Sorted(maps.Keys(handlers)) {
		hs = append(hs, fmt.Sprintf("%s %d", name, handlers[name]))
	}
	for _, name := range cfg.LaneNames() {
		lanes = append(lanes, fmt.Sprintf("%s (concurrency %d, quantum %s)", name, cfg.Lanes[name].Concurrency, cfg.Lanes[name].Quantum))
	}
	fmt.Fprintf(out, "%s: ok: %d routes (%s); lanes %s; prefix %q, %d shards\n",
		path, len(cfg.Routes), strings.Join(hs, ", "), strings.Join(lanes, ", "), cfg.Prefix, cfg.Shards)
	if len(placeholders) > 0 {
		slices.Sort(placeholders)
		fmt.Fprintf(out, "%s: the functions read %s at start-up (env:); give them in template.yaml\n", path, strings.Join(placeholders, ", "))
	}
	return nil
}

// envReferences returns the NAMEs of the "env:NAME" values in a
// configuration file (none if it is not YAML: Parse says why).
func envReferences(data []byte) []string {
	var names []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case yaml.ScalarNode:
			if name, ok := strings.CutPrefix(n.Value, "env:"); ok {
				names = append(names, name)
			}
		}
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil {
		walk(&doc)
	}
	return names
}
