package queue

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/shared/webhook"
)

func sampleItem() *Item {
	return &Item{
		ID:         "msg_2Lx9",
		ReceivedAt: time.UnixMilli(1_763_900_000_123),
		Tenant:     "acme",
		Code:       "post.create",
		Headers:    []Header{{"content-type", "application/json"}, {"webhook-id", "msg_2Lx9"}},
		Body:       []byte("{\"code\":\"post.create\",\"data\":{\"x\":\"a\\nb\"}}\n"),
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	it := sampleItem()
	got, err := decodeItem(it.encode(), it.Key())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got.ID != it.ID || !got.ReceivedAt.Equal(it.ReceivedAt) || got.Tenant != it.Tenant || got.Code != it.Code ||
		!slices.Equal(got.Headers, it.Headers) || !bytes.Equal(got.Body, it.Body) {
		t.Fatalf("round trip changed the item:\n got %+v\nwant %+v", got, it)
	}
	if got.Header("webhook-id") != "msg_2Lx9" || got.Header("missing") != "" {
		t.Fatalf("Header lookup wrong")
	}
}

// TestEnvelopePriorAttempts: a redriven item's attempt history travels in
// its envelope's first line, after the header count, and only when set.
func TestEnvelopePriorAttempts(t *testing.T) {
	it := sampleItem()
	it.PriorAttempts = 7
	b := it.encode()
	if !bytes.HasPrefix(b, []byte("@msg_2Lx9 1763900000123 2 a7\n")) {
		t.Fatalf("envelope = %q", b)
	}
	got, err := decodeItem(b, it.Key())
	if err != nil || got.PriorAttempts != 7 || len(got.Headers) != 2 || !bytes.Equal(got.Body, it.Body) {
		t.Fatalf("decode = %+v %v", got, err)
	}
	it.Headers = nil
	if b := it.encode(); !bytes.HasPrefix(b, []byte("@msg_2Lx9 1763900000123 a7\n")) {
		t.Fatalf("envelope without headers = %q", b)
	}
	for _, bad := range []string{"@a 1 a0\n", "@a 1 a01\n", "@a 1 a\n", "@a 1 a1 2\nx: y\n", "@a 1 1 2 a1\nx: y\n", "@a 1 a-1\n"} {
		if _, err := decodeItem([]byte(bad), "t:c"); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// TestEnvelopeOverhead checks the per-item byte overhead stated at
// envelopeFixed: 16 bytes + id, + 1 + digits for the header count and
// name+value+3 per header. The key's tenant and code are not repeated.
func TestEnvelopeOverhead(t *testing.T) {
	for _, it := range []*Item{
		{ID: NewID(time.Now()), ReceivedAt: time.Now(), Tenant: "t", Code: "c", Body: []byte("{}")},
		sampleItem(),
		{ID: "x", ReceivedAt: time.Now(), Tenant: "tenant-42", Code: "invoice:paid", Body: bytes.Repeat([]byte("z"), 256<<10)},
	} {
		want := envelopeFixed + len(it.ID)
		if n := len(it.Headers); n > 0 {
			want += 1 + len(strconv.Itoa(n))
		}
		for _, h := range it.Headers {
			want += len(h.Name) + len(h.Value) + 3
		}
		if got := len(it.encode()) - len(it.Body); got != want {
			t.Errorf("overhead of %s = %d bytes, want %d", it.Key(), got, want)
		}
	}
	// The figure quoted in the comment: a generated id, no headers.
	it := &Item{ID: NewID(time.Now()), ReceivedAt: time.Now(), Tenant: "tenant-with-a-long-name", Code: "c"}
	if got := len(it.encode()); got != 42 {
		t.Errorf("overhead with a generated id and no headers = %d, want 42", got)
	}
}

// TestEnvelopeV1StillDecodes: items queued by the first envelope format
// (which repeated tenant and code) decode after an upgrade.
func TestEnvelopeV1StillDecodes(t *testing.T) {
	v1 := []byte("hl1 msg_1\n1763900000123\nacme\npost.create\n1\ncontent-type: application/json\n{}")
	it, err := decodeItem(v1, "acme:post.create")
	if err != nil {
		t.Fatal(err)
	}
	if it.ID != "msg_1" || it.Tenant != "acme" || it.Code != "post.create" || it.ReceivedAt.UnixMilli() != 1763900000123 ||
		it.Header("content-type") != "application/json" || string(it.Body) != "{}" {
		t.Fatalf("v1 envelope decoded to %+v", it)
	}
}

func TestValidation(t *testing.T) {
	bad := []struct {
		name string
		it   Item
		want error
	}{
		{"empty tenant", Item{ID: "a", Tenant: "", Code: "c"}, webhook.ErrInvalidTenant},
		{"tenant with colon", Item{ID: "a", Tenant: "a:b", Code: "c"}, webhook.ErrInvalidTenant},
		{"tenant with space", Item{ID: "a", Tenant: "a b", Code: "c"}, webhook.ErrInvalidTenant},
		{"tenant with brace", Item{ID: "a", Tenant: "{x}", Code: "c"}, webhook.ErrInvalidTenant},
		{"tenant too long", Item{ID: "a", Tenant: strings.Repeat("t", webhook.MaxTenantLen+1), Code: "c"}, webhook.ErrInvalidTenant},
		{"tenant non-ascii", Item{ID: "a", Tenant: "zürich", Code: "c"}, webhook.ErrInvalidTenant},
		{"empty code", Item{ID: "a", Tenant: "t", Code: ""}, webhook.ErrInvalidCode},
		{"code with newline", Item{ID: "a", Tenant: "t", Code: "a\nb"}, webhook.ErrInvalidCode},
		{"id with colon", Item{ID: "a:b", Tenant: "t", Code: "c"}, webhook.ErrInvalidID},
		{"id with tab", Item{ID: "a\tb", Tenant: "t", Code: "c"}, webhook.ErrInvalidID},
		{"header with newline", Item{ID: "a", Tenant: "t", Code: "c", Headers: []Header{{"x", "1\r\n2"}}}, ErrInvalidHeader},
		{"header name with colon", Item{ID: "a", Tenant: "t", Code: "c", Headers: []Header{{"x:y", "1"}}}, ErrInvalidHeader},
	}
	for _, tc := range bad {
		if err := tc.it.validate(); !errors.Is(err, tc.want) {
			t.Errorf("%s: validate = %v, want %v", tc.name, err, tc.want)
		}
	}
	good := Item{ID: "evt_1", Tenant: "cust-9", Code: "order:paid/v2", Headers: []Header{{"x", "a, b; c=d"}}}
	if err := good.validate(); err != nil {
		t.Errorf("valid item refused: %v", err)
	}
	if _, _, err := SplitKey("a:b:c"); err != nil {
		t.Errorf("SplitKey(a:b:c) = %v", err)
	}
	for _, k := range []string{"", "nocolon", ":c", "t:", "t :c"} {
		if _, _, err := SplitKey(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("SplitKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	base := time.UnixMilli(1_763_900_000_000)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || webhook.ValidateID(id) != nil {
			t.Fatalf("bad id %q", id)
		}
		if id <= prev {
			t.Fatalf("ids out of order: %q then %q", prev, id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id], prev = true, id
	}
	a, b := NewID(base), NewID(base)
	if a == b || a[:10] != b[:10] {
		t.Fatalf("same-ms ids %q %q: want equal time part, different random part", a, b)
	}
}

// FuzzDecodeItem: decoding stored bytes never panics, and whatever decodes
// encodes back to the same bytes.
func FuzzDecodeItem(f *testing.F) {
	f.Add(sampleItem().encode())
	f.Add([]byte("@a 1\n"))
	f.Add([]byte("@a 1 1\nx: 1\n{}"))
	f.Add([]byte("@a 1 1 a3\nx: 1\n{}"))
	f.Add([]byte("@a 1 a12\n{}"))
	f.Add([]byte("hl1 a\n1\nt\nc\n0\n"))
	f.Add([]byte("hl1 a\n1\nt\nc\n2\nx: 1\n"))
	f.Add([]byte("hl1 \n\n\n\n-1\n"))
	for _, c := range envelopeCases {
		b, err := os.ReadFile(filepath.Join("testdata", "envelope", c.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := decodeItem(b, "t:c")
		if err != nil {
			return
		}
		if it.validate() != nil || bytes.HasPrefix(b, []byte(envelopeMagicV1)) {
			return // v1 envelopes re-encode in the current format
		}
		if again := it.encode(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding changed the envelope:\n%q\n%q", b, again)
		}
	})
}

func FuzzDecodeDead(f *testing.F) {
	f.Add(append([]byte("dead1 1763900000000 3 quick\nboom\n"), sampleItem().encode()...))
	f.Add([]byte("dead1 1 1 x\n\nhl1 a\n1\nt\nc\n0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeDead(b, "t:c") // must not panic
	})
}

// TestShardNumberIsTwoDigits: the shard number in key names is written as
// "%02d" writes it, so key names never change.
func TestShardNumberIsTwoDigits(t *testing.T) {
	for s := range 1000 {
		if got, want := shardNumber(s), fmt.Sprintf("%02d", s); got != want {
			t.Fatalf("shardNumber(%d) = %q, want %q", s, got, want)
		}
	}
}
