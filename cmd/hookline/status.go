package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/spf13/cobra"
)

// statusJSON is `hookline status --json`.
type statusJSON struct {
	At       jsonTime      `json:"at"`
	Prefix   string        `json:"prefix"`
	Lanes    []laneJSON    `json:"lanes"`
	Top      topJSON       `json:"top"`
	DeadKeys []deadKeyJSON `json:"dead_keys"`
}

type laneJSON struct {
	Lane   string         `json:"lane"`
	Paused bool           `json:"paused"`
	Pause  *lanePauseJSON `json:"pause"`
	Items  int64          `json:"items"`
	Keys   keyStatesJSON  `json:"keys"`
	// Slots are the lane's running drains, Concurrency its cap.
	Slots       int64 `json:"slots"`
	Concurrency int   `json:"concurrency"`
	OldestAgeMs int64 `json:"oldest_age_ms"`
	DeadLetters int64 `json:"dead_letters"`
}

type keyStatesJSON struct {
	Ready    int64 `json:"ready"`
	Leased   int64 `json:"leased"`
	Delayed  int64 `json:"delayed"`
	Retrying int64 `json:"retrying"`
	Paused   int64 `json:"paused"`
	Parked   int64 `json:"parked"`
}

type lanePauseJSON struct {
	Since jsonTime `json:"since"`
	By    string   `json:"by"`
	Note  string   `json:"note"`
	// Partial is set when only some shards hold the pause (a pause or
	// resume that failed halfway: run it again).
	Partial bool `json:"partial"`
}

type topJSON struct {
	By   string        `json:"by"`
	Keys []keyLoadJSON `json:"keys"`
}

type keyLoadJSON struct {
	Key         string   `json:"key"`
	Lane        string   `json:"lane"`
	State       string   `json:"state"`
	Depth       int64    `json:"depth"`
	OldestAgeMs int64    `json:"oldest_age_ms"`
	Attempts    int      `json:"attempts"`
	ReadyAt     jsonTime `json:"ready_at"`
	PausedAt    jsonTime `json:"paused_at"`
}

type deadKeyJSON struct {
	Key        string   `json:"key"`
	Count      int64    `json:"count"`
	LastDeadAt jsonTime `json:"last_dead_at"`
}

func newStatusCmd() *cobra.Command {
	var top, iterations int
	var by string
	var watch bool
	var interval time.Duration
	cmd, _ := opsCommand(opsSpec{
		use:   "status",
		short: "Show each lane's items, keys by state, oldest item and dead letters; the deepest or oldest keys",
		long: `Show each lane: its queued items, its keys by state (ready, leased, delayed,
retrying, paused, parked; a key counts once), its running drains against its
concurrency, the age of its oldest item over every key with work, its dead
letters, and whether an operator paused it. Then the top keys by depth or by
age, and the keys with the most recent dead letters.

A prefix that holds no hookline data is an error, not empty tables.`,
		args:  cobra.NoArgs,
		watch: true,
		run: func(env *opsEnv, _ []string) error {
			if by != "depth" && by != "age" {
				return usageErr("--by %q: want depth or age", by)
			}
			if top < 0 || iterations < 0 || interval < 100*time.Millisecond {
				return usageErr("--top and --iterations must not be negative, --interval at least 100ms")
			}
			once := func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, opsTimeout)
				defer cancel()
				st, err := readStatus(ctx, env, top, by)
				if err != nil {
					return err
				}
				if env.json && watch {
					return json.NewEncoder(env.out).Encode(st) // one line per refresh
				}
				return env.emit(st, func(w io.Writer) error { return printStatus(w, st) })
			}
			if !watch {
				return once(env.ctx)
			}
			ctx, stop := signal.NotifyContext(env.ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			clearScreen := !env.json && env.out == io.Writer(os.Stdout) && isTerminal(os.Stdout)
			for i := 1; ; i++ {
				if clearScreen {
					fmt.Fprint(env.out, "\x1b[H\x1b[2J")
				} else if i > 1 && !env.json {
					fmt.Fprintln(env.out)
				}
				if err := once(ctx); err != nil {
					if ctx.Err() != nil {
						return nil // interrupted
					}
					return err
				}
				if iterations > 0 && i >= iterations {
					return nil
				}
				t := time.NewTimer(interval)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
		},
	})
	f := cmd.Flags()
	f.IntVar(&top, "top", 10, "how many keys to list by depth or age, and how many dead-letter keys")
	f.StringVar(&by, "by", "depth", "order of the top keys: depth (deepest first) or age (oldest item first)")
	f.BoolVarP(&watch, "watch", "w", false, "refresh every --interval until interrupted (Ctrl-C)")
	f.DurationVar(&interval, "interval", 2*time.Second, "time between refreshes with --watch")
	f.IntVar(&iterations, "iterations", 0, "with --watch, stop after this many refreshes (0: until interrupted)")
	return cmd
}

// readStatus reads the status document.
func readStatus(ctx context.Context, env *opsEnv, top int, by string) (*statusJSON, error) {
	sv, err := env.e.Survey(ctx)
	if err != nil {
		return nil, err
	}
	st := &statusJSON{At: jsonTime(sv.At), Prefix: env.cfg.Prefix, Lanes: []laneJSON{}, DeadKeys: []deadKeyJSON{}}
	for _, l := range sv.Lanes {
		lj := laneJSON{Lane: l.Lane, Items: l.Items, Slots: l.Slots, Concurrency: env.cfg.Lanes[l.Lane].Concurrency,
			OldestAgeMs: l.OldestAge.Milliseconds(), DeadLetters: l.Dead,
			Keys: keyStatesJSON{Ready: l.Ready, Leased: l.Leased, Delayed: l.Delayed, Retrying: l.Retrying, Paused: l.Paused, Parked: l.Parked}}
		if p := l.Pause; p != nil {
			lj.Paused = true
			lj.Pause = &lanePauseJSON{Since: jsonTime(p.Since), By: p.By, Note: p.Note, Partial: p.Shards < env.e.Options().Shards}
		}
		st.Lanes = append(st.Lanes, lj)
	}
	keys := slices.Clone(sv.Keys)
	keys = slices.DeleteFunc(keys, func(k queue.KeyLoad) bool { return k.Depth == 0 })
	slices.SortFunc(keys, func(a, b queue.KeyLoad) int {
		if by == "age" {
			return cmp.Or(cmp.Compare(b.OldestAge, a.OldestAge), strings.Compare(a.Key, b.Key))
		}
		return cmp.Or(cmp.Compare(b.Depth, a.Depth), strings.Compare(a.Key, b.Key))
	})
	st.Top = topJSON{By: by, Keys: []keyLoadJSON{}}
	for _, k := range keys[:min(len(keys), top)] {
		st.Top.Keys = append(st.Top.Keys, keyLoadJSON{Key: k.Key, Lane: k.Lane, State: k.State, Depth: k.Depth,
			OldestAgeMs: k.OldestAge.Milliseconds(), Attempts: k.Attempts, ReadyAt: jsonTime(k.ReadyAt), PausedAt: jsonTime(k.PausedAt)})
	}
	if top > 0 {
		dead, err := env.e.DeadKeys(ctx, top)
		if err != nil {
			return nil, err
		}
		for _, d := range dead {
			st.DeadKeys = append(st.DeadKeys, deadKeyJSON{Key: d.Key, Count: d.Count, LastDeadAt: jsonTime(d.LastAt)})
		}
	}
	return st, nil
}

// printStatus prints the status document for people.
func printStatus(out io.Writer, st *statusJSON) error {
	now := time.Time(st.At)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LANE\tITEMS\tREADY\tLEASED\tDRAINS\tDELAYED\tRETRYING\tPAUSED\tPARKED\tOLDEST\tDEAD\tLANE STATE")
	for _, l := range st.Lanes {
		state := "running"
		if p := l.Pause; p != nil {
			state = "paused by " + p.By + " " + ago(now.Sub(time.Time(p.Since))) + " ago"
			if p.Note != "" {
				state += ": " + p.Note
			}
			if p.Partial {
				state += " (on some shards only: pause or resume it again)"
			}
		}
		k := l.Keys
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", l.Lane, l.Items, k.Ready, k.Leased, l.Slots, l.Concurrency,
			k.Delayed, k.Retrying, k.Paused, k.Parked, age(time.Duration(l.OldestAgeMs)*time.Millisecond), l.DeadLetters, state)
	}
	fmt.Fprintf(w, "\nKEYS BY %s\tLANE\tSTATE\tDEPTH\tOLDEST\tATTEMPTS\n", strings.ToUpper(st.Top.By))
	if len(st.Top.Keys) == 0 {
		fmt.Fprintln(w, "(no key has work)")
	}
	for _, k := range st.Top.Keys {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\n", k.Key, orDash(k.Lane), k.State, k.Depth, age(time.Duration(k.OldestAgeMs)*time.Millisecond), k.Attempts)
	}
	fmt.Fprintln(w, "\nDEAD LETTERS\tCOUNT\tLAST")
	if len(st.DeadKeys) == 0 {
		fmt.Fprintln(w, "(none)")
	}
	for _, d := range st.DeadKeys {
		fmt.Fprintf(w, "%s\t%d\t%s ago\n", d.Key, d.Count, ago(now.Sub(time.Time(d.LastDeadAt))))
	}
	return w.Flush()
}
