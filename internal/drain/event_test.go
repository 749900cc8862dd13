package drain

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/queue"
)

// eventFile is the drain event `sam local invoke` and the tests use.
var eventFile = filepath.Join("..", "..", "testdata", "events", "drain.json")

// TestEventMarshaling decodes the testdata drain event, checks its fields,
// encodes it again and finds the same JSON (the file compacted): every
// member of the file is a member of Event, in Event's order, and Event
// writes nothing the file lacks.
func TestEventMarshaling(t *testing.T) {
	in, err := os.ReadFile(eventFile)
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(in, &ev); err != nil {
		t.Fatalf("%s: %v", eventFile, err)
	}
	want := Event{Key: "cust_0042:post.create", Lane: "quick", Token: 1,
		Deadline: time.Date(2026, 11, 23, 12, 0, 30, 0, time.UTC)}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("%s decoded to %+v, want %+v", eventFile, ev, want)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compact.Bytes(), out) {
		t.Fatalf("round trip changed the event:\n in %s\nout %s", compact.Bytes(), out)
	}

	// With a slot, as the scheduler sends it.
	ev.Slot = "sched-1/7"
	out, err = json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	const withSlot = `{"key":"cust_0042:post.create","lane":"quick","token":1,"deadline":"2026-11-23T12:00:30Z","slot":"sched-1/7"}`
	if string(out) != withSlot {
		t.Fatalf("event with a slot = %s, want %s", out, withSlot)
	}
	var back Event
	if err := json.Unmarshal(out, &back); err != nil || back != ev {
		t.Fatalf("decoded %+v (%v), want %+v", back, err, ev)
	}
}

// TestEventOfLease: the event the scheduler builds from a lease gives the
// drain the same lease back, except its invocation, which the drain binds.
func TestEventOfLease(t *testing.T) {
	l := queue.Lease{Key: "t1:order.paid", Lane: "slow", Token: 42, Invocation: "req-1#abcd",
		Deadline: time.UnixMilli(1_763_900_030_123).UTC(), Slot: "s/3"}
	b, err := json.Marshal(NewEvent(l))
	if err != nil {
		t.Fatal(err)
	}
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	got := ev.Lease()
	l.Invocation = ""
	if !reflect.DeepEqual(got, l) {
		t.Fatalf("lease through the event = %+v, want %+v", got, l)
	}
	if strings.Contains(string(b), "invocation") {
		t.Fatalf("event %s carries an invocation", b)
	}
}

// TestEventDecodesTheOldShape: the scheduler used to send queue.Lease
// itself, with these JSON tags; an event of that shape, queued in Lambda
// during an upgrade, still decodes.
func TestEventDecodesTheOldShape(t *testing.T) {
	type oldLease struct {
		Key        string    `json:"key"`
		Lane       string    `json:"lane"`
		Token      int64     `json:"token"`
		Invocation string    `json:"invocation,omitempty"`
		Deadline   time.Time `json:"deadline"`
		Slot       string    `json:"slot,omitempty"`
	}
	at := time.Date(2026, 11, 23, 12, 0, 30, 5e6, time.UTC)
	for _, old := range []oldLease{
		{Key: "a:b", Lane: "quick", Token: 7, Deadline: at},
		{Key: "a:b", Lane: "quick", Token: 7, Deadline: at, Slot: "x/1", Invocation: "stale"},
	} {
		b, err := json.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("old event %s: %v", b, err)
		}
		want := Event{Key: old.Key, Lane: old.Lane, Token: old.Token, Deadline: old.Deadline, Slot: old.Slot}
		if !reflect.DeepEqual(ev, want) {
			t.Fatalf("old event %s decoded to %+v, want %+v", b, ev, want)
		}
	}
}

// TestEventMalformed: an event of the wrong shape fails to decode with an
// error that wraps ErrInvalidEvent and names the member at fault, and
// leaves the destination alone.
func TestEventMalformed(t *testing.T) {
	const ok = `"key":"a:b","lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"`
	for _, c := range []struct{ in, says string }{
		{``, "not a JSON object"},
		{`null`, "not a JSON object"},
		{`[]`, "not a JSON object"},
		{`"key"`, "not a JSON object"},
		{`{"key":"a:b"`, "unexpected end"},
		{`{}`, `no "key"`},
		{`{"lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `no "key"`},
		{`{"key":"a:b","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `no "lane"`},
		{`{"key":"a:b","lane":"quick","deadline":"2026-11-23T12:00:30Z"}`, `no "token"`},
		{`{"key":"a:b","lane":"quick","token":3}`, `no "deadline"`},
		{`{"key":null,"lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `no "key"`},
		{`{"key":1,"lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `"key" must be a string`},
		{`{"key":"a:b","lane":["quick"],"token":3,"deadline":"2026-11-23T12:00:30Z"}`, `"lane" must be a string`},
		{`{"key":"a:b","lane":"quick","token":"3","deadline":"2026-11-23T12:00:30Z"}`, `"token" must be an integer`},
		{`{"key":"a:b","lane":"quick","token":3.5,"deadline":"2026-11-23T12:00:30Z"}`, `"token" must be an integer`},
		{`{"key":"a:b","lane":"quick","token":3,"deadline":1763900030}`, `"deadline" must be an RFC 3339 time`},
		{`{"key":"a:b","lane":"quick","token":3,"deadline":"tomorrow"}`, `"deadline" must be an RFC 3339 time`},
		{`{` + ok + `,"slot":7}`, `"slot" must be a string`},
		{`{"key":"ab","lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `"key" must be "<tenant>:<event code>"`},
		{`{"key":":b","lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `"key" must be "<tenant>:<event code>"`},
		{`{"key":"a:","lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `"key" must be "<tenant>:<event code>"`},
		{`{"key":"a:b","lane":"","token":3,"deadline":"2026-11-23T12:00:30Z"}`, `"lane" is empty`},
		{`{"key":"a:b","lane":"quick","token":0,"deadline":"2026-11-23T12:00:30Z"}`, `"token" must be positive`},
		{`{"key":"a:b","lane":"quick","token":-1,"deadline":"2026-11-23T12:00:30Z"}`, `"token" must be positive`},
		{`{"key":"a:b","lane":"quick","token":3,"deadline":"0001-01-01T00:00:00Z"}`, `"deadline" is the zero time`},
	} {
		ev := Event{Key: "untouched"}
		err := json.Unmarshal([]byte(c.in), &ev)
		if c.in == "" || c.in == `{"key":"a:b"` {
			// encoding/json refuses these before calling UnmarshalJSON.
			if err == nil {
				t.Errorf("%s decoded", c.in)
			}
			err = ev.UnmarshalJSON([]byte(c.in))
		}
		if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: error %v, want %v saying %s", c.in, err, ErrInvalidEvent, c.says)
		}
		if ev.Key != "untouched" {
			t.Errorf("%s: a failed decode changed the event to %+v", c.in, ev)
		}
	}
	// A well-formed event with a member this version does not know.
	var ev Event
	if err := json.Unmarshal([]byte(`{`+ok+`,"priority":"high"}`), &ev); err != nil || ev.Token != 3 {
		t.Fatalf("event with an unknown member: %+v %v", ev, err)
	}
	// Errors name members, never their values.
	err := json.Unmarshal([]byte(`{"key":"s3cr3t","lane":"quick","token":3,"deadline":"2026-11-23T12:00:30Z"}`), &ev)
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("s3cr3t")) {
		t.Fatalf("error %v quotes the value, or is nil", err)
	}
}

// TestHandlerEventData: the handler's Data is the body's data object as
// webhook.Data extracts it, the rules ingest parsed the body with (a
// member "Data" is another member, not the data), and Body stays the body
// byte for byte.
func TestHandlerEventData(t *testing.T) {
	body := []byte(`{"code":"c","data":{"a":1},"Data":{"b":2}}`)
	it := &queue.Item{ID: "w1", Tenant: "acme", Code: "c", Body: body, ReceivedAt: time.UnixMilli(1)}
	ev := newEvent(it, &queue.Lease{Token: 5}, 2)
	if string(ev.Data) != `{"a":1}` || !bytes.Equal(ev.Body, body) || ev.Token != 5 || ev.Attempt != 2 || ev.Key != "acme:c" {
		t.Fatalf("event %+v, data %s", ev, ev.Data)
	}
	it.Body = []byte(`{"code":"c"}`) // no data object: never queued by ingest
	if ev := newEvent(it, &queue.Lease{Token: 5}, 1); ev.Data != nil {
		t.Fatalf("Data = %s for a body without data", ev.Data)
	}
}
