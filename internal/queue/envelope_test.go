package queue

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// envelopeCase is one envelope of testdata/envelope: the item it decodes to
// in the queue of key, and what it encodes back to ("" means the same
// bytes: every envelope of the current format has exactly one encoding).
type envelopeCase struct {
	file string
	key  string
	want Item
	lean string
}

// envelopeCases covers one file per form of the envelope (see the comment
// at envelopeFixed and docs/ENGINE.md, "An item in Redis").
var envelopeCases = []envelopeCase{
	{file: "lean.env", key: "cust_0042:post.create", want: Item{
		ID: "01KAQ4Z0M8C0V6F3JQ2Y5T9W7X", ReceivedAt: time.UnixMilli(1_763_900_000_123), Tenant: "cust_0042", Code: "post.create",
		Body: []byte(`{"code":"post.create","data":{"customer_id":"cust_0042"}}`)}},
	{file: "headers.env", key: "acme:post.create", want: Item{
		ID: "msg_2Lx9", ReceivedAt: time.UnixMilli(1_763_900_000_123), Tenant: "acme", Code: "post.create",
		Headers: []Header{{"content-type", "application/json"}, {"webhook-id", "msg_2Lx9"}},
		Body:    []byte("{\"code\":\"post.create\",\"data\":{\"x\":\"a\\nb\"}}\n")}},
	{file: "prior-attempts.env", key: "acme:post.create", want: Item{
		ID: "msg_2Lx9", ReceivedAt: time.UnixMilli(1_763_900_000_123), Tenant: "acme", Code: "post.create",
		Headers: []Header{{"x-a", "b"}}, PriorAttempts: 7,
		Body: []byte(`{"code":"post.create","data":{}}`)}},
	{file: "legacy-hl1.env", key: "acme:post.create", want: Item{
		ID: "msg_1", ReceivedAt: time.UnixMilli(1_763_900_000_123), Tenant: "acme", Code: "post.create",
		Headers: []Header{{"content-type", "application/json"}},
		Body:    []byte(`{"code":"post.create","data":{}}`)},
		lean: "@msg_1 1763900000123 1\ncontent-type: application/json\n{\"code\":\"post.create\",\"data\":{}}"},
}

func readEnvelope(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "envelope", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEnvelopeTestdata decodes each testdata envelope, checks the item's
// fields, and encodes it again: the same bytes, except that an envelope of
// the first format comes back in the current one. Every file in the folder
// must be a case, so none goes unchecked.
func TestEnvelopeTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "envelope", "*.env"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var cased []string
	for _, c := range envelopeCases {
		cased = append(cased, c.file)
	}
	slices.Sort(names)
	slices.Sort(cased)
	if !slices.Equal(names, cased) {
		t.Fatalf("testdata/envelope holds %v, the cases are %v", names, cased)
	}
	for _, c := range envelopeCases {
		in := readEnvelope(t, c.file)
		it, err := decodeItem(in, c.key)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if !reflect.DeepEqual(*it, c.want) {
			t.Fatalf("%s decoded to\n%+v\nwant\n%+v", c.file, *it, c.want)
		}
		if err := it.validate(); err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		want := string(in)
		if c.lean != "" {
			want = c.lean
		}
		if out := it.encode(); string(out) != want {
			t.Fatalf("%s encodes to\n%q\nwant\n%q", c.file, out, want)
		}
	}
}

// TestEnvelopeTestdataThroughRedrive: the redrive script rewrites an
// envelope in Lua (it adds prior attempts, and brings the first format up
// to date). For every testdata envelope, a dead letter holding it comes
// back as the Go encoding of the same item with the dead letter's attempts
// added: the script and the Go encoder agree on every form.
func TestEnvelopeTestdataThroughRedrive(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		for i, c := range envelopeCases {
			in := readEnvelope(t, c.file)
			key := fmt.Sprintf("redrive%d:%s", i, c.want.Code) // a key of its own per case
			s := f.e.shard(key)
			rec := append([]byte("dead1 1763900000000 3 quick\nfailed\n"), in...)
			if err := rdb.RPush(f.ctx, f.e.ks.dlq(s, key), rec).Err(); err != nil {
				t.Fatal(err)
			}
			rdb.ZAdd(f.ctx, f.e.ks.dlqIndex(s), redis.Z{Score: 1763900000000, Member: key})
			if rd, err := f.e.Redrive(f.ctx, key, Selection{}, Change{}); err != nil || !slices.Equal(rd.IDs, []string{c.want.ID}) {
				t.Fatalf("%s: redrive = %+v %v", c.file, rd, err)
			}
			want := c.want
			want.PriorAttempts += 3
			got, err := rdb.LIndex(f.ctx, f.e.ks.queue(s, key), 0).Bytes()
			if err != nil {
				t.Fatalf("%s: %v", c.file, err)
			}
			if !bytes.Equal(got, want.encode()) {
				t.Fatalf("%s: redriven envelope\n%q\nwant\n%q", c.file, got, want.encode())
			}
		}
	})
}
