package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/spf13/cobra"
)

// changeJSON is the document of pause, resume and skip.
type changeJSON struct {
	Action string `json:"action"`
	// Lane is set for a lane's pause or resume.
	Lane *laneChangeJSON `json:"lane,omitempty"`
	// Tenant is set when the keys are a tenant's.
	Tenant string          `json:"tenant,omitempty"`
	Keys   []keyChangeJSON `json:"keys"`
	Failed int             `json:"failed"`
}

type laneChangeJSON struct {
	Lane string `json:"lane"`
	// Changed is false when the lane was paused (or running) already.
	Changed bool `json:"changed"`
}

type keyChangeJSON struct {
	Key string `json:"key"`
	// Changed is false when there was nothing to do (the key was paused
	// already, or not paused, or had no item to skip).
	Changed bool `json:"changed"`
	// Was is, for resume, "paused", "parked" or "".
	Was string `json:"was,omitempty"`
	// Ready is, for resume, whether the key has work and is ready again.
	Ready *bool `json:"ready,omitempty"`
	// Skipped is, for skip, the id of the item moved to the dead letters.
	Skipped string `json:"skipped,omitempty"`
	// New is, for pause, set when Redis held nothing of the key yet (a typo,
	// or a key paused before its first webhook).
	New   bool `json:"new,omitempty"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// pauseTargets are the keys (or lane) a pause or resume names.
type pauseTargets struct {
	tenant, lane string
}

func (pt *pauseTargets) add(cmd *cobra.Command, verb string) {
	cmd.Flags().StringVar(&pt.tenant, "tenant", "", verb+" every key of this tenant that has work or is paused")
	cmd.Flags().StringVar(&pt.lane, "lane", "", verb+" a whole lane: no drain takes its keys while paused; its webhooks are still accepted")
}

// keys resolves the keys of the command: KEY..., or a tenant's.
func (pt *pauseTargets) keys(env *opsEnv, args []string) ([]string, error) {
	n := 0
	for _, set := range []bool{len(args) > 0, pt.tenant != "", pt.lane != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, usageErr("name KEY..., or --tenant, or --lane (one of them)")
	}
	if pt.tenant == "" {
		for _, k := range args {
			if _, _, err := queue.SplitKey(k); err != nil {
				return nil, fmt.Errorf("%w: %q: want <tenant>:<event code>", err, k)
			}
		}
		return args, nil
	}
	return env.e.TenantKeys(env.ctx, pt.tenant)
}

// runKeyChanges applies change to each key with a progress bar and a change
// log line per key, then prints the document.
func runKeyChanges(env *opsEnv, doc *changeJSON, keys []string, change func(key string) (keyChangeJSON, error)) error {
	bar := env.bar(len(keys), doc.Action)
	var failed []string
	var firstErr error
	for _, k := range keys {
		kc, err := change(k)
		kc.Key = k
		attrs := []any{"key", k, "changed", kc.Changed}
		if err != nil {
			kc.Error = keyError(err)
			failed = append(failed, k)
			firstErr = cmpErr(firstErr, err)
			attrs = append(attrs, "err", err.Error())
		}
		if kc.Skipped != "" {
			attrs = append(attrs, "item", kc.Skipped)
		}
		if kc.Was != "" {
			attrs = append(attrs, "was", kc.Was)
		}
		if bar != nil {
			_ = bar.Clear() // the log line gets a line of its own
		}
		env.logChange(doc.Action, attrs...)
		doc.Keys = append(doc.Keys, kc)
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	doc.Failed = len(failed)
	if len(keys) == 1 && firstErr != nil {
		return firstErr // the one key's error is the command's
	}
	if err := env.emit(doc, func(out io.Writer) error { return printChange(out, doc) }); err != nil {
		return err
	}
	if len(failed) == 0 {
		return nil
	}
	return &reported{withCode(codePartial, fmt.Errorf("%s failed for %s of %s: %s", doc.Action,
		countOf(len(failed), "key"), countOf(len(keys), "key"), strings.Join(failed, ", ")))}
}

// cmpErr returns first, or err when first is nil.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// printChange prints a pause, resume or skip report for people.
func printChange(out io.Writer, doc *changeJSON) error {
	if l := doc.Lane; l != nil {
		switch {
		case doc.Action == "pause" && l.Changed:
			fmt.Fprintf(out, "paused lane %s: no drain takes its keys until it is resumed; its webhooks are still accepted and queued\n", l.Lane)
		case doc.Action == "pause":
			fmt.Fprintf(out, "lane %s was paused already\n", l.Lane)
		case l.Changed:
			fmt.Fprintf(out, "resumed lane %s: its keys are dispatched again\n", l.Lane)
		default:
			fmt.Fprintf(out, "lane %s was not paused\n", l.Lane)
		}
		return nil
	}
	if len(doc.Keys) == 0 {
		fmt.Fprintf(out, "no key of tenant %s has work or is paused: nothing to %s\n", doc.Tenant, doc.Action)
		return nil
	}
	for _, k := range doc.Keys {
		switch {
		case k.Error != nil:
			fmt.Fprintf(out, "%s: %s refused: %s\n", k.Key, doc.Action, k.Error.Message)
		case doc.Action == "pause" && k.Changed && k.New:
			fmt.Fprintf(out, "paused %s (nothing of it was in Redis: check the key; its webhooks will wait when they come)\n", k.Key)
		case doc.Action == "pause" && k.Changed:
			fmt.Fprintf(out, "paused %s\n", k.Key)
		case doc.Action == "pause":
			fmt.Fprintf(out, "%s was paused already\n", k.Key)
		case doc.Action == "resume":
			state := "no work queued"
			if k.Ready != nil && *k.Ready {
				state = "ready"
			}
			was := "it was not paused"
			if k.Was != "" {
				was = "it was " + k.Was
			}
			fmt.Fprintf(out, "resumed %s (%s; %s; head attempts reset)\n", k.Key, state, was)
		case doc.Action == "skip" && k.Changed:
			fmt.Fprintf(out, "skipped %s, the head item of %s: it is in the dead letters, the items behind it go on\n", k.Skipped, k.Key)
		case doc.Action == "skip":
			fmt.Fprintf(out, "%s has no queued item: nothing skipped\n", k.Key)
		}
	}
	return nil
}

func newPauseCmd() *cobra.Command {
	var pt pauseTargets
	cmd, _ := opsCommand(opsSpec{
		use:   "pause [KEY...]",
		short: "Stop keys (KEY..., --tenant) or a whole lane (--lane) from being worked until resumed",
		long: `Stop keys from being worked until resumed: the KEYs named, every key of a
tenant that has work or is paused now (--tenant; keys that appear later are
not paused), or a whole lane (--lane: no drain takes its keys, and the
scheduler starts none, while its webhooks are still accepted and queued).
A drain working a key when it is paused stops at its next batch. --by and
--note are recorded in each key's audit list (inspect shows them) and with a
lane's pause.`,
		repair: true,
		run: func(env *opsEnv, args []string) error {
			doc := &changeJSON{Action: "pause", Tenant: pt.tenant, Keys: []keyChangeJSON{}}
			keys, err := pt.keys(env, args)
			if err != nil {
				return err
			}
			if pt.lane != "" {
				before, err := env.e.PausedLanes(env.ctx)
				if err != nil {
					return err
				}
				was := slices.ContainsFunc(before, func(lp queue.LanePause) bool { return lp.Lane == pt.lane && lp.Shards == env.e.Options().Shards })
				if err := env.e.PauseLane(env.ctx, pt.lane, env.change()); err != nil {
					return err
				}
				doc.Lane = &laneChangeJSON{Lane: pt.lane, Changed: !was}
				env.logChange("pause", "lane", pt.lane, "changed", !was)
				return env.emit(doc, func(out io.Writer) error { return printChange(out, doc) })
			}
			return runKeyChanges(env, doc, keys, func(key string) (keyChangeJSON, error) {
				info, err := env.e.Inspect(env.ctx, key)
				if err != nil {
					return keyChangeJSON{}, err
				}
				changed, err := env.e.Pause(env.ctx, key, env.change())
				return keyChangeJSON{Changed: changed, New: !info.Exists()}, err
			})
		},
	})
	pt.add(cmd, "pause")
	return cmd
}

func newResumeCmd() *cobra.Command {
	var pt pauseTargets
	cmd, _ := opsCommand(opsSpec{
		use:   "resume [KEY...]",
		short: "Let paused or parked keys (KEY..., --tenant) or a paused lane (--lane) be worked again",
		long: `Let keys be worked again: the KEYs named, or every key of a tenant that has
work or is paused (--tenant). A paused or parked key is ready again with its
head item's attempts reset; a key that was not paused is made ready now. With
--lane, lift the lane's pause: the scheduler dispatches its keys again.`,
		repair: true,
		run: func(env *opsEnv, args []string) error {
			doc := &changeJSON{Action: "resume", Tenant: pt.tenant, Keys: []keyChangeJSON{}}
			keys, err := pt.keys(env, args)
			if err != nil {
				return err
			}
			if pt.lane != "" {
				was, err := env.e.ResumeLane(env.ctx, pt.lane, env.change())
				if err != nil {
					return err
				}
				doc.Lane = &laneChangeJSON{Lane: pt.lane, Changed: was}
				env.logChange("resume", "lane", pt.lane, "changed", was)
				return env.emit(doc, func(out io.Writer) error { return printChange(out, doc) })
			}
			return runKeyChanges(env, doc, keys, func(key string) (keyChangeJSON, error) {
				res, err := env.e.Resume(env.ctx, key, env.change())
				return keyChangeJSON{Changed: res.Was != "", Was: res.Was, Ready: &res.Ready}, err
			})
		},
	})
	pt.add(cmd, "resume")
	return cmd
}

func newSkipCmd() *cobra.Command {
	cmd, _ := opsCommand(opsSpec{
		use:   "skip KEY",
		short: "Move a key's head item to its dead letters so the items behind it go on (pause the key first if a drain holds it)",
		long: `Move a key's head item (a poisoned webhook) to its dead letters, with the
reason "skipped by operator: <note>", so the items behind it go on. A key a
drain holds is refused (leased): pause it, wait for the drain to yield, then
skip and resume. dlq redrive puts the item back later, in arrival order.`,
		args:   cobra.ExactArgs(1),
		repair: true,
		run: func(env *opsEnv, args []string) error {
			doc := &changeJSON{Action: "skip", Keys: []keyChangeJSON{}}
			return runKeyChanges(env, doc, args, func(key string) (keyChangeJSON, error) {
				id, err := env.e.Skip(env.ctx, key, env.change())
				if errors.Is(err, queue.ErrLeased) {
					err = fmt.Errorf("%w: a drain is working %s; pause it, wait for the drain to yield, then skip", err, key)
				}
				return keyChangeJSON{Changed: id != "", Skipped: id}, err
			})
		},
	})
	return cmd
}

// pausedJSON is `hookline paused --json`.
type pausedJSON struct {
	Lanes []pausedLaneJSON `json:"lanes"`
	Keys  []pausedKeyJSON  `json:"keys"`
}

type pausedLaneJSON struct {
	Lane string `json:"lane"`
	lanePauseJSON
}

type pausedKeyJSON struct {
	Key  string `json:"key"`
	Lane string `json:"lane"`
	// State is "paused" (by an operator) or "parked" (its head used its
	// attempts under the park policy).
	State     string   `json:"state"`
	Since     jsonTime `json:"since"`
	Depth     int64    `json:"depth"`
	Attempts  int      `json:"attempts"`
	LastError string   `json:"last_error"`
	By        string   `json:"by"`
	Note      string   `json:"note"`
}

func newPausedCmd() *cobra.Command {
	var tenant, lane string
	var parked, pausedOnly bool
	cmd, _ := opsCommand(opsSpec{
		use:   "paused",
		short: "List the paused lanes and the paused and parked keys (longest first), with who paused them and why",
		args:  cobra.NoArgs,
		run: func(env *opsEnv, _ []string) error {
			doc := pausedJSON{Lanes: []pausedLaneJSON{}, Keys: []pausedKeyJSON{}}
			lanes, err := env.e.PausedLanes(env.ctx)
			if err != nil {
				return err
			}
			for _, lp := range lanes {
				if lane == "" || lane == lp.Lane {
					doc.Lanes = append(doc.Lanes, pausedLaneJSON{Lane: lp.Lane, lanePauseJSON: lanePauseJSON{Since: jsonTime(lp.Since),
						By: lp.By, Note: lp.Note, Partial: lp.Shards < env.e.Options().Shards}})
				}
			}
			keys, err := env.e.PausedKeys(env.ctx)
			if err != nil {
				return err
			}
			for _, k := range keys {
				t, _, _ := queue.SplitKey(k.Key)
				if (tenant != "" && t != tenant) || (lane != "" && k.Lane != lane) || (parked && !k.Parked) || (pausedOnly && k.Parked) {
					continue
				}
				state := queue.StatePaused
				if k.Parked {
					state = queue.StateParked
				}
				doc.Keys = append(doc.Keys, pausedKeyJSON{Key: k.Key, Lane: k.Lane, State: state, Since: jsonTime(k.Since), Depth: k.Depth,
					Attempts: k.Attempts, LastError: k.LastError, By: k.By, Note: k.Note})
			}
			return env.emit(doc, func(out io.Writer) error { return printPaused(out, &doc) })
		},
	})
	cmd.Flags().StringVar(&tenant, "tenant", "", "only keys of this tenant")
	cmd.Flags().StringVar(&lane, "lane", "", "only this lane and its keys")
	cmd.Flags().BoolVar(&parked, "parked", false, "only parked keys")
	cmd.Flags().BoolVar(&pausedOnly, "paused-only", false, "only keys an operator paused (not parked ones)")
	return cmd
}

func printPaused(out io.Writer, doc *pausedJSON) error {
	now := time.Now()
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(doc.Lanes) == 0 {
		fmt.Fprintln(w, "no lane is paused")
	} else {
		fmt.Fprintln(w, "PAUSED LANE\tSINCE\tBY\tNOTE")
		for _, l := range doc.Lanes {
			note := orDash(l.Note)
			if l.Partial {
				note += " (on some shards only: pause or resume it again)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", l.Lane, stamp(now, time.Time(l.Since)), l.By, note)
		}
	}
	fmt.Fprintln(w)
	if len(doc.Keys) == 0 {
		fmt.Fprintln(w, "no key is paused or parked")
		return w.Flush()
	}
	fmt.Fprintln(w, "KEY\tLANE\tSTATE\tSINCE\tDEPTH\tATTEMPTS\tBY\tWHY")
	for _, k := range doc.Keys {
		why := k.Note
		if k.State == queue.StateParked {
			why = "last error: " + k.LastError
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", k.Key, orDash(k.Lane), k.State, stamp(now, time.Time(k.Since)), k.Depth, k.Attempts, orDash(k.By), orDash(why))
	}
	return w.Flush()
}
