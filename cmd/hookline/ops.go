package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strings"
	"syscall"
	"time"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// The operator commands read and fix the queues of a deployment. They need
// the deployment's configuration (for its prefix, shards and lanes) and its
// Redis (HOOKLINE_REDIS_URL, with the same authentication settings as the
// functions).
//
// Every one of them takes --json (or --output json): it then prints one JSON
// document on stdout, with stable snake_case field names, and on failure
// {"error": {"code": ..., "message": ...}} instead; the exit status is
// non-zero on any failure. Repairs (pause, resume, skip, redrive, purge)
// take --by (default the OS user) and --note, record them in each changed
// key's audit list, and log one JSON line per change on stderr.

// defaultOpsConfig is the configuration the operator commands load when
// neither --config nor HOOKLINE_CONFIG names one: the deployed file.
const defaultOpsConfig = "hookline.yaml"

// opsTimeout bounds one operator command (one refresh of status --watch).
const opsTimeout = 60 * time.Second

// Error codes of the JSON errors (and the kinds of failure they name).
const (
	codeConfig       = "config"            // the configuration or the environment is wrong
	codeRedis        = "redis_unavailable" // Redis could not be reached
	codeNoData       = "no_data"           // nothing under the prefix
	codeUnknownKey   = "unknown_key"       // Redis holds nothing of the key
	codeInvalidKey   = "invalid_key"       // not <tenant>:<code>
	codeUnknownLane  = "unknown_lane"      // a lane the configuration does not name
	codeLeased       = "leased"            // a drain holds the key
	codeConfirm      = "confirmation_required"
	codeUsage        = "usage"   // wrong arguments or flags
	codePartial      = "partial" // some keys of a bulk change failed
	codeInternal     = "error"   // anything else
	errNoDataMessage = "no hookline data under prefix %q (%d shards, lanes %s): check --config, HOOKLINE_PREFIX and HOOKLINE_REDIS_URL; a deployment that has never taken a webhook has none either"
)

// opsError is an error with a code for --json.
type opsError struct {
	code string
	err  error
}

func (e *opsError) Error() string { return e.err.Error() }
func (e *opsError) Unwrap() error { return e.err }

func withCode(code string, err error) error { return &opsError{code: code, err: err} }

func usageErr(format string, args ...any) error {
	return withCode(codeUsage, fmt.Errorf(format, args...))
}

// reported is an error whose result was already printed (a bulk change
// where some keys failed): --json prints no second document for it.
type reported struct{ err error }

func (r *reported) Error() string { return r.err.Error() }
func (r *reported) Unwrap() error { return r.err }

// errorCode names the kind of failure err is.
func errorCode(err error) string {
	var oe *opsError
	var ne net.Error
	switch {
	case errors.As(err, &oe):
		return oe.code
	case errors.Is(err, queue.ErrUnknownKey):
		return codeUnknownKey
	case errors.Is(err, queue.ErrInvalidKey), errors.Is(err, webhook.ErrInvalidTenant):
		return codeInvalidKey
	case errors.Is(err, queue.ErrUnknownLane):
		return codeUnknownLane
	case errors.Is(err, queue.ErrLeased):
		return codeLeased
	case errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return codeRedis
	}
	return codeInternal
}

// jsonError is the document --json prints for a failure.
type jsonError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// opsFlags are the flags every operator command takes.
type opsFlags struct {
	config string
	json   bool
	output string
	// by and note are set on repairs only.
	by, note string
	yes      bool
}

func (f *opsFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "configuration file (default $HOOKLINE_CONFIG, else "+defaultOpsConfig+")")
	fl.BoolVar(&f.json, "json", false, "print JSON (the same as --output json)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
}

// addRepair adds the flags of a command that changes keys.
func (f *opsFlags) addRepair(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.by, "by", "", "who makes the change, recorded in each key's audit list (default the OS user)")
	cmd.Flags().StringVar(&f.note, "note", "", "why, recorded in each key's audit list")
}

// addYes adds --yes, which confirms a bulk change without a prompt.
func (f *opsFlags) addYes(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "confirm "+what+" without a prompt (required when stdin is not a terminal)")
}

// wantJSON reports whether the command prints JSON.
func (f *opsFlags) wantJSON() bool { return f.json || f.output == "json" }

// load reads the deployment's configuration and connects to its Redis.
func (f *opsFlags) load(ctx context.Context) (*app.App, error) {
	if f.output != "text" && f.output != "json" {
		return nil, usageErr("--output %q: want text or json", f.output)
	}
	getenv := func(name string) string {
		if name == config.EnvConfig {
			return cmp.Or(f.config, os.Getenv(name), defaultOpsConfig)
		}
		return os.Getenv(name)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, withCode(codeConfig, err)
	}
	if cfg.Redis.URL == "" {
		return nil, withCode(codeConfig, fmt.Errorf("%s is required: the Redis of the deployment to inspect", config.EnvRedisURL))
	}
	// go-redis logs each failed dial on stderr; the command's error says it.
	redis.SetLogger(quietRedis{})
	a, err := app.Connect(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, withCode(codeConfig, err)
	}
	return a, nil
}

// quietRedis drops go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// opsEnv is what an operator command runs with.
type opsEnv struct {
	ctx    context.Context
	cmd    *cobra.Command
	out    io.Writer // stdout
	errw   io.Writer // stderr: prompts, progress, the change log
	in     io.Reader
	cfg    *config.Config
	e      *queue.Engine
	flags  *opsFlags
	json   bool
	logger *slog.Logger
}

// change is the who and why of a repair.
func (env *opsEnv) change() queue.Change {
	return queue.Change{By: cmp.Or(env.flags.by, defaultBy()), Note: env.flags.note}
}

// defaultBy names the operator: $USER, else the OS user, else "unknown".
func defaultBy() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// logChange writes the change log line of one repair on stderr.
func (env *opsEnv) logChange(action string, attrs ...any) {
	c := env.change()
	env.logger.Info("operator change", append([]any{"action", action, "by", c.By, "note", c.Note, "prefix", env.cfg.Prefix}, attrs...)...)
}

// emit prints v as JSON, or calls text to print it for people.
func (env *opsEnv) emit(v any, text func(w io.Writer) error) error {
	if env.json {
		enc := json.NewEncoder(env.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(env.out)
}

// isTerminal reports whether v is a file that is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// stdinIsTerminal reports whether stdin is interactive (a variable, so
// tests can answer prompts).
var stdinIsTerminal = func(r io.Reader) bool { return isTerminal(r) }

// confirm asks the operator to confirm what (a bulk change). --yes
// confirms; without it an interactive stdin is asked, and a stdin that is
// not a terminal (CI, a pipe) is a failure that names --yes.
func (env *opsEnv) confirm(what string) error {
	if env.flags.yes {
		return nil
	}
	if !stdinIsTerminal(env.in) {
		return withCode(codeConfirm, fmt.Errorf("%s: add --yes to confirm (stdin is not a terminal, so nothing was asked)", what))
	}
	fmt.Fprintf(env.errw, "%s? [y/N] ", what)
	line, _ := bufio.NewReader(env.in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return withCode(codeConfirm, fmt.Errorf("%s: not confirmed", what))
}

// bar returns a progress bar over n keys on stderr, or nil when there is
// one key or the output is JSON.
func (env *opsEnv) bar(n int, desc string) *progressbar.ProgressBar {
	if n < 2 || env.json {
		return nil
	}
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(env.errw),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// opsSpec describes an operator command.
type opsSpec struct {
	use, short, long string
	args             cobra.PositionalArgs
	// repair adds --by and --note; yes adds --yes for what it names.
	repair bool
	yes    string
	// noDataOK skips the check that the prefix holds hookline data.
	noDataOK bool
	// watch: the command bounds its own time (status --watch).
	watch bool
	run   func(env *opsEnv, args []string) error
}

// opsCommand builds an operator command: it connects, checks that the
// prefix holds hookline data, runs spec.run and turns failures into
// --json errors.
func opsCommand(spec opsSpec) (*cobra.Command, *opsFlags) {
	f := &opsFlags{}
	cmd := &cobra.Command{Use: spec.use, Short: spec.short, Long: spec.long}
	fail := func(cmd *cobra.Command, err error) error {
		if f.wantJSON() {
			cmd.SilenceErrors = true
			var r *reported
			if !errors.As(err, &r) {
				var je jsonError
				je.Error.Code, je.Error.Message = errorCode(err), err.Error()
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				_ = enc.Encode(je)
			}
		}
		return err
	}
	// A flag that does not parse fails before --json is known: the command
	// line tells.
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		err = withCode(codeUsage, err)
		if argsWantJSON(os.Args[1:]) {
			f.json = true
			return fail(cmd, err)
		}
		return err
	})
	if spec.args != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := spec.args(cmd, args); err != nil {
				return fail(cmd, withCode(codeUsage, err))
			}
			return nil
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if !spec.watch {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, opsTimeout)
			defer cancel()
		}
		a, err := f.load(ctx)
		if err != nil {
			return fail(cmd, err)
		}
		defer a.Close()
		env := &opsEnv{ctx: ctx, cmd: cmd, out: cmd.OutOrStdout(), errw: cmd.ErrOrStderr(), in: cmd.InOrStdin(),
			cfg: a.Config, e: a.Engine, flags: f, json: f.wantJSON(),
			logger: slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))}
		if !spec.noDataOK {
			if err := env.checkData(); err != nil {
				return fail(cmd, err)
			}
		}
		if err := spec.run(env, args); err != nil {
			return fail(cmd, err)
		}
		return nil
	}
	f.add(cmd)
	if spec.repair {
		f.addRepair(cmd)
	}
	if spec.yes != "" {
		f.addYes(cmd, spec.yes)
	}
	return cmd, f
}

// argsWantJSON reports whether a command line asks for JSON output.
func argsWantJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--json", a == "--json=true", a == "--output=json", a == "-ojson", a == "-o=json":
			return true
		case (a == "--output" || a == "-o") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// checkData fails when the prefix holds no hookline data: a wrong prefix
// or Redis reads as "all clear" otherwise.
func (env *opsEnv) checkData() error {
	ok, err := env.e.HasData(env.ctx)
	if err != nil {
		return err
	}
	if !ok {
		o := env.e.Options()
		return withCode(codeNoData, fmt.Errorf(errNoDataMessage, o.Prefix, o.Shards, strings.Join(o.Lanes, ", ")))
	}
	return nil
}

// Formatting helpers shared by the commands.

// jsonTime is a time in JSON: RFC 3339 in UTC with milliseconds, or null
// when zero.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

// stamp prints a time for people: RFC 3339 in UTC and how long ago (or
// from now) it is.
func stamp(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	s := t.UTC().Format(time.RFC3339)
	if d := now.Sub(t); d < 0 {
		return s + " (in " + ago(-d) + ")"
	}
	return s + " (" + ago(now.Sub(t)) + " ago)"
}

// ago rounds a duration for people.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// age prints how old something is, "-" for none.
func age(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return ago(d)
}

// countOf renders "1 item" or "2 items".
func countOf(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// orDash prints "-" for an empty string.
func orDash(s string) string { return cmp.Or(s, "-") }
