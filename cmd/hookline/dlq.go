package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/spf13/cobra"
)

// dlqOpts are the flags of the dlq commands.
type dlqOpts struct {
	// Filters: which keys, and which of their dead letters.
	tenant, code, reason string
	olderThan, newerThan time.Duration
	ids                  []string
	// count: per key, how many dead letters to redrive or purge (in
	// arrival order), or to show.
	count  int
	limit  int
	body   bool
	dryRun bool
	// redrive is the legacy `dlq KEY --redrive`.
	redrive bool
}

func (o *dlqOpts) addFilters(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.tenant, "tenant", "", "only keys of this tenant")
	f.StringVar(&o.code, "code", "", "only keys of this event code")
	f.StringVar(&o.reason, "reason", "", "only dead letters whose reason contains this text (any case)")
	f.DurationVar(&o.olderThan, "older-than", 0, "only dead letters that died at least this long ago")
	f.DurationVar(&o.newerThan, "newer-than", 0, "only dead letters that died less than this long ago")
	f.StringSliceVar(&o.ids, "id", nil, "only these item ids (repeat or separate with commas)")
}

// itemFilters reports whether a filter looks inside dead letters.
func (o *dlqOpts) itemFilters() bool {
	return o.reason != "" || o.olderThan > 0 || o.newerThan > 0 || len(o.ids) > 0
}

func (o *dlqOpts) keyMatches(key string) bool {
	tenant, code, err := queue.SplitKey(key)
	return err == nil && (o.tenant == "" || o.tenant == tenant) && (o.code == "" || o.code == code)
}

func (o *dlqOpts) itemMatches(d *queue.DeadItem, now time.Time) bool {
	if o.reason != "" && !strings.Contains(strings.ToLower(d.Reason), strings.ToLower(o.reason)) {
		return false
	}
	if o.olderThan > 0 && now.Sub(d.DeadAt) < o.olderThan {
		return false
	}
	if o.newerThan > 0 && now.Sub(d.DeadAt) >= o.newerThan {
		return false
	}
	if len(o.ids) > 0 {
		for _, id := range o.ids {
			if id == d.Item.ID {
				return true
			}
		}
		return false
	}
	return true
}

// dlqPage is how many dead letters one read takes.
const dlqPage = 500

// dlqTarget is a key with dead letters the filters select.
type dlqTarget struct {
	key    string
	total  int64
	lastAt time.Time
	// items are the matching dead letters, in the order they died (read
	// only when needed).
	items []*queue.DeadItem
	sel   queue.Selection
}

func (t *dlqTarget) matching() int64 {
	if t.sel.IDs != nil || t.items != nil {
		return int64(len(t.items))
	}
	return t.total
}

// targets resolves the keys and dead letters the filters select: KEY, or
// every key with dead letters; readItems reads the dead letters of every
// key even without an item filter.
func (o *dlqOpts) targets(env *opsEnv, args []string, readItems bool) ([]*dlqTarget, error) {
	var keys []queue.DeadKey
	if len(args) == 1 {
		key := args[0]
		info, err := env.e.Inspect(env.ctx, key)
		if err != nil {
			return nil, err
		}
		if !info.Exists() {
			return nil, fmt.Errorf("%w: %s: no queued item, dead letter, pause, lease or audit record under prefix %q", queue.ErrUnknownKey, key, env.cfg.Prefix)
		}
		if !o.keyMatches(key) {
			return nil, nil
		}
		if info.Dead > 0 {
			keys = []queue.DeadKey{{Key: key, Count: info.Dead}}
		}
	} else {
		all, err := env.e.DeadKeys(env.ctx, 0)
		if err != nil {
			return nil, err
		}
		for _, k := range all {
			if o.keyMatches(k.Key) {
				keys = append(keys, k)
			}
		}
	}
	now := time.Now()
	var out []*dlqTarget
	for _, k := range keys {
		t := &dlqTarget{key: k.Key, total: k.Count, lastAt: k.LastAt, sel: queue.Selection{Count: o.count}}
		if o.itemFilters() || readItems {
			// A page at a time; payloads are kept only for what is shown.
			t.total = 0
			t.items = []*queue.DeadItem{}
			for start := 0; ; start += dlqPage {
				dead, err := env.e.DeadItems(env.ctx, k.Key, start, dlqPage)
				if err != nil {
					return nil, err
				}
				for _, d := range dead {
					t.total++
					t.lastAt = d.DeadAt
					if !o.itemMatches(d, now) {
						continue
					}
					if !o.body || (o.limit > 0 && len(t.items) >= o.limit) {
						d.Item.Body = nil
					}
					t.items = append(t.items, d)
				}
				if len(dead) < dlqPage {
					break
				}
			}
			if o.itemFilters() {
				if len(t.items) == 0 {
					continue
				}
				t.sel.IDs = make([]string, len(t.items))
				for i, d := range t.items {
					t.sel.IDs[i] = d.Item.ID
				}
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// JSON documents of the dlq commands.
type (
	dlqListJSON struct {
		Keys []dlqKeyJSON `json:"keys"`
		// Items counts the matching dead letters over the keys.
		Items int64 `json:"items"`
	}
	dlqKeyJSON struct {
		Key        string   `json:"key"`
		Count      int64    `json:"count"`
		Matching   int64    `json:"matching"`
		LastDeadAt jsonTime `json:"last_dead_at"`
	}
	dlqShowJSON struct {
		Key         string     `json:"key"`
		Count       int64      `json:"count"`
		DeadLetters []deadJSON `json:"dead_letters"`
	}
	deadJSON struct {
		itemJSON
		DeadAt   jsonTime `json:"dead_at"`
		Attempts int      `json:"attempts"`
		Lane     string   `json:"lane"`
		Reason   string   `json:"reason"`
	}
	// dlqChangeJSON is the document of redrive and purge.
	dlqChangeJSON struct {
		Action string             `json:"action"`
		DryRun bool               `json:"dry_run"`
		Keys   []dlqKeyChangeJSON `json:"keys"`
		// Items counts the dead letters moved or deleted (would be, for a
		// dry run); Failed the keys that failed.
		Items  int `json:"items"`
		Failed int `json:"failed"`
	}
	dlqKeyChangeJSON struct {
		Key string `json:"key"`
		// Behind is the head item that is being retried and stays first
		// (redrive only; "" when the moved items are the new head).
		Behind string `json:"behind"`
		// Items are the dead letters moved or deleted, in the order they
		// now stand in the queue (redrive: arrival order).
		Items []deadJSON `json:"items"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error,omitempty"`
	}
)

func newDeadJSON(d *queue.DeadItem, body bool) deadJSON {
	return deadJSON{itemJSON: newItemJSON(d.Item, body), DeadAt: jsonTime(d.DeadAt), Attempts: d.Attempts, Lane: d.Lane, Reason: d.Reason}
}

func newDLQCmd() *cobra.Command {
	o := &dlqOpts{}
	cmd, _ := opsCommand(opsSpec{
		use:   "dlq [KEY]",
		short: "Dead letters: list the keys that have them, show a key's, redrive or purge them (see the subcommands)",
		long: `Without a subcommand: with no KEY, list the keys with dead letters (as dlq
list); with a KEY, show its dead letters (as dlq show); with --redrive, put
KEY's dead letters back in its queue (as dlq redrive KEY).`,
		args:   cobra.MaximumNArgs(1),
		repair: true,
		run: func(env *opsEnv, args []string) error {
			switch {
			case o.redrive && len(args) == 0:
				return usageErr("--redrive needs a KEY (or use: hookline dlq redrive --tenant ... --yes)")
			case o.redrive:
				return runRedrive(env, o, args)
			case len(args) == 1:
				return runDLQShow(env, o, args)
			}
			return runDLQList(env, o, args)
		},
	})
	o.addFilters(cmd)
	cmd.Flags().BoolVar(&o.redrive, "redrive", false, "put KEY's dead letters back at the head of its queue, in arrival order")
	cmd.Flags().IntVar(&o.count, "count", 0, "with --redrive: how many, earliest arrivals first (default all)")
	cmd.Flags().IntVar(&o.limit, "limit", 50, "how many dead letters to show, or keys to list (0: all)")
	cmd.Flags().BoolVar(&o.body, "body", false, "show the payloads")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "with --redrive: print the order items would go back in, change nothing")
	cmd.AddCommand(newDLQListCmd(), newDLQShowCmd(), newDLQRedriveCmd(), newDLQPurgeCmd())
	return cmd
}

func newDLQListCmd() *cobra.Command {
	o := &dlqOpts{}
	cmd, _ := opsCommand(opsSpec{
		use:   "list [KEY]",
		short: "List the keys with dead letters (most recent death first), filtered",
		args:  cobra.MaximumNArgs(1),
		run:   func(env *opsEnv, args []string) error { return runDLQList(env, o, args) },
	})
	o.addFilters(cmd)
	cmd.Flags().IntVar(&o.limit, "limit", 0, "list at most this many keys (0: all)")
	return cmd
}

func runDLQList(env *opsEnv, o *dlqOpts, args []string) error {
	ts, err := o.targets(env, args, false)
	if err != nil {
		return err
	}
	doc := dlqListJSON{Keys: []dlqKeyJSON{}}
	for _, t := range ts {
		if o.limit > 0 && len(doc.Keys) >= o.limit {
			break
		}
		doc.Keys = append(doc.Keys, dlqKeyJSON{Key: t.key, Count: t.total, Matching: t.matching(), LastDeadAt: jsonTime(t.lastAt)})
		doc.Items += t.matching()
	}
	return env.emit(doc, func(out io.Writer) error {
		if len(doc.Keys) == 0 {
			fmt.Fprintln(out, "no dead letters match")
			return nil
		}
		now := time.Now()
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "KEY\tCOUNT\tMATCHING\tLAST DEAD")
		for _, k := range doc.Keys {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", k.Key, k.Count, k.Matching, stamp(now, time.Time(k.LastDeadAt)))
		}
		fmt.Fprintf(w, "\n%s in %s\n", countOf(int(doc.Items), "dead letter"), countOf(len(doc.Keys), "key"))
		return w.Flush()
	})
}

func newDLQShowCmd() *cobra.Command {
	o := &dlqOpts{}
	cmd, _ := opsCommand(opsSpec{
		use:   "show KEY",
		short: "Show a key's dead letters in the order they died: id, receipt, death, attempts, reason, payload with --body",
		args:  cobra.ExactArgs(1),
		run:   func(env *opsEnv, args []string) error { return runDLQShow(env, o, args) },
	})
	o.addFilters(cmd)
	cmd.Flags().IntVar(&o.limit, "limit", 50, "show at most this many (0: all)")
	cmd.Flags().BoolVar(&o.body, "body", false, "show the payloads")
	return cmd
}

func runDLQShow(env *opsEnv, o *dlqOpts, args []string) error {
	ts, err := o.targets(env, args, true)
	if err != nil {
		return err
	}
	doc := dlqShowJSON{Key: args[0], DeadLetters: []deadJSON{}}
	if len(ts) == 1 {
		doc.Count = ts[0].total
		for _, d := range ts[0].items {
			if o.limit > 0 && len(doc.DeadLetters) >= o.limit {
				break
			}
			doc.DeadLetters = append(doc.DeadLetters, newDeadJSON(d, o.body))
		}
	}
	return env.emit(doc, func(out io.Writer) error {
		if len(doc.DeadLetters) == 0 {
			fmt.Fprintf(out, "%s has no dead letters that match (%d in all)\n", doc.Key, doc.Count)
			return nil
		}
		now := time.Now()
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tRECEIVED\tDEAD\tATTEMPTS\tREASON")
		var items []itemJSON
		for _, d := range doc.DeadLetters {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.ID, time.Time(d.ReceivedAt).UTC().Format(time.RFC3339Nano),
				stamp(now, time.Time(d.DeadAt)), attemptsText(d.Attempts, d.PriorAttempts), d.Reason)
			items = append(items, d.itemJSON)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(out, "\n%d of %s of %s, in the order they died\n", len(doc.DeadLetters), countOf(int(doc.Count), "dead letter"), doc.Key)
		printBodies(out, nil, items)
		return nil
	})
}

// attemptsText prints an item's attempts: "2", or "2 (+3 before)".
func attemptsText(n, prior int) string {
	if prior > 0 {
		return fmt.Sprintf("%d (+%d before)", n, prior)
	}
	return fmt.Sprint(n)
}

func newDLQRedriveCmd() *cobra.Command {
	o := &dlqOpts{}
	cmd, _ := opsCommand(opsSpec{
		use:   "redrive [KEY]",
		short: "Put dead letters back in their key's queue, in arrival order, never ahead of an item being retried",
		long: `Put dead letters back in their key's queue: those of KEY, or of every key the
filters select (--yes, or a confirmation, when more than one key changes).

Each key's items go back in the order they arrived (receipt time, then their
place in the dead-letter list), which is not the order they died in once a
redriven item has died again, at the head of the queue: before every item
still queued, except an item that is being retried (the head has failed
attempts), which stays first with its attempts and its retry time; the
redriven items stand right behind it. Each item keeps its attempt history
(inspect shows the attempts before the redrive). A key a drain holds is
refused (leased): try again once the drain yields, or pause the key first.

--dry-run prints that order and changes nothing.`,
		args:   cobra.MaximumNArgs(1),
		repair: true,
		yes:    "a redrive of several keys",
		run:    func(env *opsEnv, args []string) error { return runRedrive(env, o, args) },
	})
	o.addFilters(cmd)
	cmd.Flags().IntVar(&o.count, "count", 0, "per key, how many: the earliest arrivals first (0: all that match)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the order the items would go back in; change nothing")
	return cmd
}

func newDLQPurgeCmd() *cobra.Command {
	o := &dlqOpts{}
	cmd, _ := opsCommand(opsSpec{
		use:   "purge [KEY]",
		short: "Delete dead letters for good (--yes, or a confirmation, always)",
		long: `Delete dead letters for good: those of KEY, or of every key the filters
select. Always asks for a confirmation; --yes gives it (required when stdin is
not a terminal). --dry-run lists what would go and changes nothing.`,
		args:   cobra.MaximumNArgs(1),
		repair: true,
		yes:    "the purge",
		run:    func(env *opsEnv, args []string) error { return runPurge(env, o, args) },
	})
	o.addFilters(cmd)
	cmd.Flags().IntVar(&o.count, "count", 0, "per key, how many: the earliest arrivals first (0: all that match)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "list what would be deleted; change nothing")
	return cmd
}

// deadByID indexes dead letters by item id.
func deadByID(items []*queue.DeadItem) map[string]*queue.DeadItem {
	m := make(map[string]*queue.DeadItem, len(items))
	for _, d := range items {
		if _, ok := m[d.Item.ID]; !ok {
			m[d.Item.ID] = d
		}
	}
	return m
}

func itemsOf(ids []string, byID map[string]*queue.DeadItem) []deadJSON {
	out := make([]deadJSON, 0, len(ids))
	for _, id := range ids {
		if d := byID[id]; d != nil {
			out = append(out, newDeadJSON(d, false))
		} else {
			out = append(out, deadJSON{itemJSON: itemJSON{ID: id}})
		}
	}
	return out
}

func keyError(err error) *struct {
	Code    string `json:"code"`
	Message string `json:"message"`
} {
	return &struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{errorCode(err), err.Error()}
}

func runRedrive(env *opsEnv, o *dlqOpts, args []string) error {
	return runDLQChange(env, o, args, "redrive", func(t *dlqTarget) (string, []string, error) {
		if o.dryRun {
			rd, err := env.e.PlanRedrive(env.ctx, t.key, t.sel)
			return rd.Behind, rd.IDs, err
		}
		rd, err := env.e.Redrive(env.ctx, t.key, t.sel, env.change())
		return rd.Behind, rd.IDs, err
	})
}

func runPurge(env *opsEnv, o *dlqOpts, args []string) error {
	return runDLQChange(env, o, args, "purge", func(t *dlqTarget) (string, []string, error) {
		ids, err := env.e.PurgeDead(env.ctx, t.key, t.sel, env.change(), o.dryRun)
		return "", ids, err
	})
}

// runDLQChange runs a redrive or purge over the selected keys: confirmation
// (a purge always, a redrive of several keys), a progress bar over keys,
// one change log line per key, and a report of each key's items in order.
func runDLQChange(env *opsEnv, o *dlqOpts, args []string, action string, do func(t *dlqTarget) (behind string, ids []string, err error)) error {
	if o.count < 0 {
		return usageErr("--count must not be negative")
	}
	ts, err := o.targets(env, args, true)
	if err != nil {
		return err
	}
	doc := dlqChangeJSON{Action: action, DryRun: o.dryRun, Keys: []dlqKeyChangeJSON{}}
	var n int64
	for _, t := range ts {
		n += t.matching()
	}
	if !o.dryRun && len(ts) > 0 && (action == "purge" || len(ts) > 1) {
		verb := map[string]string{"redrive": "redrive", "purge": "delete for good"}[action]
		if err := env.confirm(fmt.Sprintf("%s %s of %s", verb, countOf(int(n), "dead letter"), countOf(len(ts), "key"))); err != nil {
			return err
		}
	}
	bar := env.bar(len(ts), action)
	var failed []string
	var firstErr error
	for _, t := range ts {
		behind, ids, err := do(t)
		kc := dlqKeyChangeJSON{Key: t.key, Behind: behind, Items: itemsOf(ids, deadByID(t.items))}
		if err != nil {
			kc.Error = keyError(err)
			kc.Items = []deadJSON{}
			failed = append(failed, t.key)
			firstErr = cmpErr(firstErr, err)
		}
		doc.Keys = append(doc.Keys, kc)
		doc.Items += len(kc.Items)
		if !o.dryRun {
			if bar != nil {
				_ = bar.Clear() // the log line gets a line of its own
			}
			attrs := []any{"key", t.key, "items", len(ids), "ids", ids}
			if behind != "" {
				attrs = append(attrs, "behind", behind)
			}
			if err != nil {
				attrs = append(attrs, "err", err.Error())
			}
			env.logChange(action, attrs...)
		}
		if bar != nil {
			_ = bar.Add(1)
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	doc.Failed = len(failed)
	if len(ts) == 1 && firstErr != nil {
		return firstErr // the one key's error is the command's
	}
	if err := env.emit(doc, func(out io.Writer) error { return printDLQChange(out, &doc) }); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &reported{withCode(codePartial, fmt.Errorf("%s failed for %s of %s: %s", action,
			countOf(len(failed), "key"), countOf(len(ts), "key"), strings.Join(failed, ", ")))}
	}
	return nil
}

// printDLQChange prints a redrive or purge report for people.
func printDLQChange(out io.Writer, doc *dlqChangeJSON) error {
	if len(doc.Keys) == 0 {
		fmt.Fprintf(out, "no dead letters match: nothing to %s\n", doc.Action)
		return nil
	}
	now := time.Now()
	done := map[string]string{"redrive": "redrove", "purge": "deleted"}[doc.Action]
	for _, k := range doc.Keys {
		if k.Error != nil {
			fmt.Fprintf(out, "%s: %s refused: %s\n", k.Key, doc.Action, k.Error.Message)
			continue
		}
		if doc.DryRun {
			switch {
			case doc.Action == "purge":
				fmt.Fprintf(out, "would delete %s of %s:\n", countOf(len(k.Items), "dead letter"), k.Key)
			case k.Behind != "":
				fmt.Fprintf(out, "would redrive %s of %s, in this order, behind %s (being retried: it stays first):\n",
					countOf(len(k.Items), "item"), k.Key, k.Behind)
			default:
				fmt.Fprintf(out, "would redrive %s of %s, in this order, at the head of its queue:\n", countOf(len(k.Items), "item"), k.Key)
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for i, it := range k.Items {
				fmt.Fprintf(w, "  %d.\t%s\treceived %s\tattempts %s\t%s\n", i+1, it.ID,
					time.Time(it.ReceivedAt).UTC().Format(time.RFC3339Nano), attemptsText(it.Attempts, it.PriorAttempts), it.Reason)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			continue
		}
		ids := make([]string, 0, len(k.Items))
		for _, it := range k.Items {
			ids = append(ids, it.ID)
		}
		list := strings.Join(ids[:min(len(ids), 20)], " ")
		if len(ids) > 20 {
			list += " ..."
		}
		switch {
		case len(ids) == 0:
			fmt.Fprintf(out, "%s: no dead letter matched\n", k.Key)
		case doc.Action == "purge":
			fmt.Fprintf(out, "deleted %s of %s: %s\n", countOf(len(ids), "dead letter"), k.Key, list)
		case k.Behind != "":
			fmt.Fprintf(out, "%s %s of %s to its queue in arrival order, behind %s (being retried): %s\n", done, countOf(len(ids), "item"), k.Key, k.Behind, list)
		default:
			fmt.Fprintf(out, "%s %s of %s to the head of its queue in arrival order: %s\n", done, countOf(len(ids), "item"), k.Key, list)
		}
	}
	if doc.DryRun {
		fmt.Fprintf(out, "dry run at %s: nothing changed\n", now.UTC().Format(time.RFC3339))
	}
	return nil
}
