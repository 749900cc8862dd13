package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/internal/queue"
	"github.com/spf13/cobra"
)

// inspectJSON is `hookline inspect KEY --json`.
type inspectJSON struct {
	Key    string `json:"key"`
	Tenant string `json:"tenant"`
	Code   string `json:"code"`
	Lane   string `json:"lane"`
	State  string `json:"state"`
	Depth  int64  `json:"depth"`
	// OldestAgeMs is the age of the head item.
	OldestAgeMs int64     `json:"oldest_age_ms"`
	Head        *itemJSON `json:"head"`
	// Attempts counts the head item's failures since it was last queued;
	// TotalAttempts adds those before a redrive (head.prior_attempts).
	Attempts      int    `json:"attempts"`
	TotalAttempts int    `json:"total_attempts"`
	LastError     string `json:"last_error"`
	// ReadyAt is when the key may be claimed (its next attempt when
	// retrying), null when it is not in the ready index.
	ReadyAt     jsonTime    `json:"ready_at"`
	Paused      bool        `json:"paused"`
	Parked      bool        `json:"parked"`
	PausedAt    jsonTime    `json:"paused_at"`
	LanePaused  bool        `json:"lane_paused"`
	Lease       *leaseJSON  `json:"lease"`
	DeadLetters int64       `json:"dead_letters"`
	Audit       []auditJSON `json:"audit"`
	Items       []itemJSON  `json:"items"`
}

type itemJSON struct {
	ID            string   `json:"id"`
	ReceivedAt    jsonTime `json:"received_at"`
	PriorAttempts int      `json:"prior_attempts"`
	// Body is the payload when --body is given: as text when it is UTF-8,
	// else in BodyBase64.
	Body       *string `json:"body,omitempty"`
	BodyBase64 *string `json:"body_base64,omitempty"`
}

type leaseJSON struct {
	Token      int64    `json:"token"`
	Invocation string   `json:"invocation"`
	Deadline   jsonTime `json:"deadline"`
}

type auditJSON struct {
	At     jsonTime `json:"at"`
	Action string   `json:"action"`
	By     string   `json:"by"`
	Detail string   `json:"detail"`
	Note   string   `json:"note"`
}

func newItemJSON(it *queue.Item, body bool) itemJSON {
	j := itemJSON{ID: it.ID, ReceivedAt: jsonTime(it.ReceivedAt), PriorAttempts: it.PriorAttempts}
	if body {
		if utf8.Valid(it.Body) {
			s := string(it.Body)
			j.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(it.Body)
			j.BodyBase64 = &s
		}
	}
	return j
}

func auditsJSON(recs []queue.AuditRecord) []auditJSON {
	out := make([]auditJSON, 0, len(recs))
	for _, a := range recs {
		out = append(out, auditJSON{At: jsonTime(a.At), Action: a.Action, By: a.By, Detail: a.Detail, Note: a.Note})
	}
	return out
}

func newInspectCmd() *cobra.Command {
	var items int
	var body bool
	cmd, _ := opsCommand(opsSpec{
		use:   "inspect KEY",
		short: "Show one key: state, head item, attempts, next attempt, last error, pause, lease, dead letters, audit",
		long: `Show one key (<tenant>:<event code>): its state, depth and head item (id,
receipt time, attempts in this life and before a redrive), its last error and
next attempt, whether it is paused or parked, its lease (token, invocation,
deadline), its dead letters, and the operator changes recorded for it
(newest first). --items lists queued items from the head; --body adds their
payloads. A key Redis holds nothing of is an error.`,
		args: cobra.ExactArgs(1),
		run: func(env *opsEnv, args []string) error {
			key := args[0]
			if items < 0 {
				return usageErr("--items must not be negative")
			}
			info, err := env.e.Inspect(env.ctx, key)
			if err != nil {
				return err
			}
			if !info.Exists() {
				return fmt.Errorf("%w: %s: no queued item, dead letter, pause, lease or audit record under prefix %q", queue.ErrUnknownKey, key, env.cfg.Prefix)
			}
			tenant, code, _ := queue.SplitKey(key)
			j := inspectJSON{Key: key, Tenant: tenant, Code: code, Lane: info.Lane, State: info.State, Depth: info.Depth,
				OldestAgeMs: info.OldestAge.Milliseconds(), Attempts: info.Attempts, TotalAttempts: info.Attempts,
				LastError: info.LastError, ReadyAt: jsonTime(info.ReadyAt), Paused: info.Paused, Parked: info.Parked,
				PausedAt: jsonTime(info.PausedAt), LanePaused: info.LanePaused, DeadLetters: info.Dead,
				Audit: auditsJSON(info.Audit), Items: []itemJSON{}}
			if info.Head != nil {
				h := newItemJSON(info.Head, body)
				j.Head = &h
				j.TotalAttempts += info.Head.PriorAttempts
			}
			if l := info.Lease; l != nil {
				j.Lease = &leaseJSON{Token: l.Token, Invocation: l.Invocation, Deadline: jsonTime(l.Deadline)}
			}
			if items > 0 {
				its, err := env.e.Items(env.ctx, key, 0, items)
				if err != nil {
					return err
				}
				for _, it := range its {
					j.Items = append(j.Items, newItemJSON(it, body))
				}
			}
			return env.emit(j, func(w io.Writer) error { return printInspect(w, time.Now(), &j) })
		},
	})
	cmd.Flags().IntVar(&items, "items", 0, "list this many queued items from the head")
	cmd.Flags().BoolVar(&body, "body", false, "print the payload of the head and of the listed items")
	return cmd
}

// printInspect prints the inspect document for people.
func printInspect(out io.Writer, now time.Time, j *inspectJSON) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "key\t%s\nlane\t%s\nstate\t%s\ndepth\t%d\n", j.Key, orDash(j.Lane), j.State, j.Depth)
	if h := j.Head; h != nil {
		fmt.Fprintf(w, "head\t%s, received %s\n", h.ID, stamp(now, time.Time(h.ReceivedAt)))
	} else {
		fmt.Fprintln(w, "head\t-")
	}
	attempts := fmt.Sprint(j.Attempts)
	if j.Head != nil && j.Head.PriorAttempts > 0 {
		attempts += fmt.Sprintf(" (+%d before it was dead-lettered and redriven: %d in all)", j.Head.PriorAttempts, j.TotalAttempts)
	}
	fmt.Fprintf(w, "attempts\t%s\nlast error\t%s\n", attempts, orDash(j.LastError))
	switch {
	case j.State == queue.StateRetrying:
		fmt.Fprintf(w, "next attempt\t%s\n", stamp(now, time.Time(j.ReadyAt)))
	case j.State == queue.StateDelayed || j.State == queue.StateReady:
		fmt.Fprintf(w, "ready at\t%s\n", stamp(now, time.Time(j.ReadyAt)))
	}
	switch {
	case j.Parked:
		fmt.Fprintf(w, "paused\tparked since %s (its head used its attempts; resume it when fixed)\n", stamp(now, time.Time(j.PausedAt)))
	case j.Paused:
		fmt.Fprintf(w, "paused\tsince %s\n", stamp(now, time.Time(j.PausedAt)))
	default:
		fmt.Fprintln(w, "paused\tno")
	}
	if j.LanePaused {
		fmt.Fprintf(w, "lane paused\tyes: no drain takes keys of %s until it is resumed\n", j.Lane)
	}
	if l := j.Lease; l != nil {
		fmt.Fprintf(w, "lease\ttoken %d, invocation %s, until %s\n", l.Token, orDash(l.Invocation), stamp(now, time.Time(l.Deadline)))
	} else {
		fmt.Fprintln(w, "lease\t-")
	}
	fmt.Fprintf(w, "dead letters\t%d\n", j.DeadLetters)
	if err := w.Flush(); err != nil {
		return err
	}
	if len(j.Items) > 0 {
		fmt.Fprintln(out, "\nITEMS (head first)")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "#\tID\tRECEIVED\tPRIOR ATTEMPTS")
		for i, it := range j.Items {
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\n", i+1, it.ID, stamp(now, time.Time(it.ReceivedAt)), it.PriorAttempts)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	printBodies(out, j.Head, j.Items)
	if len(j.Audit) > 0 {
		fmt.Fprintln(out, "\nAUDIT (newest first)")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "AT\tACTION\tBY\tWHAT\tNOTE")
		for _, a := range j.Audit {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", time.Time(a.At).UTC().Format(time.RFC3339), a.Action, a.By, a.Detail, orDash(a.Note))
		}
		return w.Flush()
	}
	return nil
}

// printBodies prints the payloads of items that carry one.
func printBodies(out io.Writer, head *itemJSON, items []itemJSON) {
	seen := map[string]bool{}
	for _, it := range append([]itemJSON{derefItem(head)}, items...) {
		if it.ID == "" || seen[it.ID] || (it.Body == nil && it.BodyBase64 == nil) {
			continue
		}
		seen[it.ID] = true
		if it.Body != nil {
			fmt.Fprintf(out, "\n--- body of %s\n%s\n", it.ID, strings.TrimRight(*it.Body, "\n"))
		} else {
			fmt.Fprintf(out, "\n--- body of %s (base64: not UTF-8)\n%s\n", it.ID, *it.BodyBase64)
		}
	}
}

func derefItem(p *itemJSON) itemJSON {
	if p == nil {
		return itemJSON{}
	}
	return *p
}
