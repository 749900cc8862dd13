package drain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/queue"
)

// Event is the drain function's event: what the scheduler sends, as JSON,
// with each asynchronous invocation of the drain function, one per claimed
// key. This type is the one definition of that format; the scheduler builds
// it with NewEvent and the drain function decodes it. Its JSON is
//
//	{
//	  "key":      "<tenant>:<event code>",   the leased key (required)
//	  "lane":     "<lane>",                  the lane it was claimed on (required)
//	  "token":    <integer > 0>,             the lease's fencing token (required)
//	  "deadline": "<RFC 3339 time>",         when the lease runs out unless activated (required)
//	  "slot":     "<lane slot id>"           the lane slot the drain holds, left out when none
//	}
//
// Members it does not know are ignored, so an event written by an earlier
// scheduler (which also sent "invocation", always empty) or a later one
// still decodes. testdata/events/drain.json is an example, used by `sam
// local invoke` and the tests.
type Event struct {
	// Key is the leased key, "<tenant>:<event code>".
	Key string `json:"key"`
	// Lane is the lane the key was claimed on.
	Lane string `json:"lane"`
	// Token is the lease's fencing token.
	Token int64 `json:"token"`
	// Deadline is when the lease runs out unless the drain activates it.
	Deadline time.Time `json:"deadline"`
	// Slot is the lane slot the scheduler took for this drain ("" when
	// none): the drain holds it for its whole invocation and may work
	// further keys of the lane in it.
	Slot string `json:"slot,omitempty"`
}

// ErrInvalidEvent reports a drain event that does not decode: not a JSON
// object, a member of the wrong type, or a required member missing or
// empty. Its message names the member, never its value.
var ErrInvalidEvent = errors.New("drain: invalid event")

// NewEvent returns the event that dispatches a drain for lease l.
func NewEvent(l queue.Lease) Event {
	return Event{Key: l.Key, Lane: l.Lane, Token: l.Token, Deadline: l.Deadline, Slot: l.Slot}
}

// Lease returns the lease the event carries, not yet bound to an
// invocation (Drainer.Run binds it).
func (ev Event) Lease() queue.Lease {
	return queue.Lease{Key: ev.Key, Lane: ev.Lane, Token: ev.Token, Deadline: ev.Deadline, Slot: ev.Slot}
}

// eventMember is one member of the event's JSON: where it decodes to, what
// its JSON type must be (for errors), and whether it is required.
type eventMember struct {
	name     string
	dst      any
	want     string
	required bool
}

// UnmarshalJSON decodes an event and checks it: the required members are
// present and not empty, and the token is positive. Errors wrap
// ErrInvalidEvent and name the offending member.
func (ev *Event) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidEvent)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	var e Event
	for _, m := range []eventMember{
		{"key", &e.Key, "a string", true},
		{"lane", &e.Lane, "a string", true},
		{"token", &e.Token, "an integer", true},
		{"deadline", &e.Deadline, "an RFC 3339 time string", true},
		{"slot", &e.Slot, "a string", false},
	} {
		v, ok := raw[m.name]
		if !ok || string(v) == "null" {
			if m.required {
				return fmt.Errorf("%w: no %q member", ErrInvalidEvent, m.name)
			}
			continue
		}
		if err := json.Unmarshal(v, m.dst); err != nil {
			return fmt.Errorf("%w: %q must be %s", ErrInvalidEvent, m.name, m.want)
		}
	}
	switch tenant, code, _ := strings.Cut(e.Key, ":"); {
	case tenant == "" || code == "":
		return fmt.Errorf(`%w: "key" must be "<tenant>:<event code>"`, ErrInvalidEvent)
	case e.Lane == "":
		return fmt.Errorf(`%w: "lane" is empty`, ErrInvalidEvent)
	case e.Token <= 0:
		return fmt.Errorf(`%w: "token" must be positive`, ErrInvalidEvent)
	case e.Deadline.IsZero():
		return fmt.Errorf(`%w: "deadline" is the zero time`, ErrInvalidEvent)
	}
	*ev = e
	return nil
}
