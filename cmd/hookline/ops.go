package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/shared/app"
	"github.com/hookline/hookline/shared/config"
	"github.com/hookline/hookline/shared/queue"
	"github.com/spf13/cobra"
)

// The operator commands read and fix the queues of a deployment. They need
// the deployment's configuration (for its prefix, shards and lanes) and its
// Redis (HOOKLINE_REDIS_URL, with the same authentication settings as the
// functions).

// defaultOpsConfig is the configuration the operator commands load when
// neither --config nor HOOKLINE_CONFIG names one: the deployed file.
const defaultOpsConfig = "hookline.yaml"

// opsFlags are the flags every operator command takes.
type opsFlags struct{ config string }

func (f *opsFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "configuration file (default $HOOKLINE_CONFIG, else "+defaultOpsConfig+")")
}

// engine connects to the deployment's Redis.
func (f *opsFlags) engine(ctx context.Context) (*app.App, error) {
	getenv := func(name string) string {
		if name == config.EnvConfig {
			return cmp.Or(f.config, os.Getenv(name), defaultOpsConfig)
		}
		return os.Getenv(name)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	if cfg.Redis.URL == "" {
		return nil, fmt.Errorf("%s is required: the Redis of the deployment to inspect", config.EnvRedisURL)
	}
	return app.Connect(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// opsCommand builds an operator command whose run gets a connected engine.
func opsCommand(use, short string, args cobra.PositionalArgs, run func(ctx context.Context, out io.Writer, e *queue.Engine, args []string) error) (*cobra.Command, *opsFlags) {
	f := &opsFlags{}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			a, err := f.engine(ctx)
			if err != nil {
				return err
			}
			defer a.Close()
			return run(ctx, cmd.OutOrStdout(), a.Engine, args)
		},
	}
	f.add(cmd)
	return cmd, f
}

func newStatusCmd() *cobra.Command {
	var top int
	cmd, _ := opsCommand("status", "Show each lane's ready, leased and delayed keys, the deepest keys and the dead letters", cobra.NoArgs,
		func(ctx context.Context, out io.Writer, e *queue.Engine, _ []string) error {
			now := time.Now()
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "LANE\tREADY\tLEASED\tDELAYED\tOLDEST READY")
			for _, lane := range e.Options().Lanes {
				st, err := e.Stats(ctx, lane)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", lane, st.Ready, st.Leased, st.Delayed, age(now, st.OldestReady))
			}
			deep, err := e.Top(ctx, queue.ByDepth, top)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, "\nKEY\tLANE\tDEPTH\tPAUSED")
			for _, k := range deep {
				fmt.Fprintf(w, "%s\t%s\t%d\t%v\n", k.Key, cmp.Or(k.Lane, "-"), k.Depth, k.Paused)
			}
			dead, err := e.DeadKeys(ctx, top)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, "\nDEAD LETTERS\tCOUNT\tLAST")
			for _, d := range dead {
				fmt.Fprintf(w, "%s\t%d\t%s ago\n", d.Key, d.Count, now.Sub(d.LastAt).Round(time.Second))
			}
			return w.Flush()
		})
	cmd.Flags().IntVar(&top, "top", 10, "how many of the deepest keys and dead-letter keys to list")
	return cmd
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Millisecond).String()
}

func newInspectCmd() *cobra.Command {
	cmd, _ := opsCommand("inspect KEY", "Show one key: depth, head age, attempts, last error, pause, lease, dead letters", cobra.ExactArgs(1),
		func(ctx context.Context, out io.Writer, e *queue.Engine, args []string) error {
			info, err := e.Inspect(ctx, args[0])
			if err != nil {
				return err
			}
			oldest := "-"
			if info.Depth > 0 {
				oldest = info.OldestAge.Round(time.Millisecond).String()
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "key\t%s\nlane\t%s\ndepth\t%d\noldest\t%s\nattempts\t%d\nlast error\t%s\npaused\t%v\ndead letters\t%d\n",
				info.Key, cmp.Or(info.Lane, "-"), info.Depth, oldest, info.Attempts,
				cmp.Or(info.LastError, "-"), info.Paused, info.Dead)
			if l := info.Lease; l != nil {
				fmt.Fprintf(w, "lease\ttoken %d, invocation %s, until %s\n", l.Token, cmp.Or(l.Invocation, "(not activated)"), l.Deadline.Format(time.RFC3339))
			} else {
				fmt.Fprintln(w, "lease\t-")
			}
			return w.Flush()
		})
	return cmd
}

func newDLQCmd() *cobra.Command {
	var redrive bool
	var count int
	cmd, _ := opsCommand("dlq [KEY]", "List the keys with dead letters, or one key's dead letters; --redrive puts them back at the head of the queue", cobra.MaximumNArgs(1),
		func(ctx context.Context, out io.Writer, e *queue.Engine, args []string) error {
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			defer w.Flush()
			if len(args) == 0 {
				if redrive {
					return errors.New("--redrive needs a KEY")
				}
				keys, err := e.DeadKeys(ctx, max(count, 1))
				if err != nil {
					return err
				}
				fmt.Fprintln(w, "KEY\tCOUNT\tLAST DEAD")
				for _, k := range keys {
					fmt.Fprintf(w, "%s\t%d\t%s\n", k.Key, k.Count, k.LastAt.Format(time.RFC3339))
				}
				return nil
			}
			key := args[0]
			if redrive {
				rd, err := e.Redrive(ctx, key, queue.Selection{Count: count}, queue.Change{})
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "redrove %d item(s) of %s to the head of its queue\n", len(rd.IDs), key)
				return nil
			}
			items, err := e.DeadItems(ctx, key, 0, max(count, 1))
			if err != nil {
				return err
			}
			fmt.Fprintln(w, "ID\tDEAD AT\tATTEMPTS\tREASON")
			for _, d := range items {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", d.Item.ID, d.DeadAt.Format(time.RFC3339), d.Attempts, d.Reason)
			}
			return nil
		})
	cmd.Flags().BoolVar(&redrive, "redrive", false, "move KEY's dead letters back to the head of its queue, oldest first")
	cmd.Flags().IntVar(&count, "count", 0, "how many to list (default 50) or to redrive (default all)")
	cmd.PreRun = func(*cobra.Command, []string) {
		if !redrive && count == 0 {
			count = 50
		}
	}
	return cmd
}

func newPauseCmd() *cobra.Command {
	cmd, _ := opsCommand("pause KEY", "Stop a key from being worked until resumed (a running drain stops at its next batch)", cobra.ExactArgs(1),
		func(ctx context.Context, out io.Writer, e *queue.Engine, args []string) error {
			if _, err := e.Pause(ctx, args[0], queue.Change{}); err != nil {
				return err
			}
			fmt.Fprintf(out, "paused %s\n", args[0])
			return nil
		})
	return cmd
}

func newResumeCmd() *cobra.Command {
	cmd, _ := opsCommand("resume KEY", "Let a paused or parked key be worked again, its head item's attempts reset", cobra.ExactArgs(1),
		func(ctx context.Context, out io.Writer, e *queue.Engine, args []string) error {
			res, err := e.Resume(ctx, args[0], queue.Change{})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "resumed %s (%s)\n", args[0], map[bool]string{true: "ready", false: "no work queued"}[res.Ready])
			return nil
		})
	return cmd
}

func newSkipCmd() *cobra.Command {
	var note string
	cmd, _ := opsCommand("skip KEY", "Move a key's head item to its dead letters so the items behind it go on (pause the key first if a drain holds it)", cobra.ExactArgs(1),
		func(ctx context.Context, out io.Writer, e *queue.Engine, args []string) error {
			id, err := e.Skip(ctx, args[0], queue.Change{Note: note})
			if errors.Is(err, queue.ErrLeased) {
				return fmt.Errorf("%w: a drain is working %s; pause it, wait for the drain to yield, then skip", err, args[0])
			}
			if err != nil {
				return err
			}
			if id == "" {
				fmt.Fprintf(out, "%s has no queued item\n", args[0])
				return nil
			}
			fmt.Fprintf(out, "skipped the head item of %s (it is in the dead letters)\n", args[0])
			return nil
		})
	cmd.Flags().StringVar(&note, "note", "", "why, stored with the dead letter")
	return cmd
}
