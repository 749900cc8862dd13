package sender

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/webhook"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestSendToIngest sends to the real ingest server on a real Redis: the
// webhooks are accepted, stored in send order per key, recognised as
// duplicates when a run is repeated, and refused with the server's codes.
func TestSendToIngest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, err := queue.New(redistest.Standalone(t), queue.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	v, err := webhook.NewStandard([]string{testSecret}, 0)
	if err != nil {
		t.Fatalf("NewStandard: %v", err)
	}
	srv, err := ingest.New(ingest.Options{
		Engine: e, Verifier: v, TenantPointer: DefaultTenantPointer,
		Lane:   func(code string) (string, bool) { return "default", code != "no.route" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("ingest.New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	opt := Options{URL: hs.URL + "/webhooks", Secret: testSecret, Tenants: 3, Codes: []string{"post.create", "order.paid"}, Count: 10}
	rep := mustSend(t, opt)
	if rep.Accepted != 60 || rep.Failed != 0 {
		t.Fatalf("first run: %+v, want 60 accepted", rep)
	}

	leases, err := e.Claim(ctx, "default", 10)
	if err != nil || len(leases) != 6 {
		t.Fatalf("Claim: %d leases, %v; want 6", len(leases), err)
	}
	for _, l := range leases {
		b, err := e.Fetch(ctx, &l, 100)
		if err != nil {
			t.Fatalf("Fetch %s: %v", l.Key, err)
		}
		if len(b.Items) != 10 {
			t.Fatalf("key %s holds %d items, want 10", l.Key, len(b.Items))
		}
		for n, it := range b.Items {
			var body struct {
				Data struct{ Seq int } `json:"data"`
			}
			if err := json.Unmarshal(it.Body, &body); err != nil || body.Data.Seq != n || !strings.HasPrefix(it.ID, rep.Run+"-") {
				t.Fatalf("key %s item %d: id %q body %s (%v)", l.Key, n, it.ID, it.Body, err)
			}
		}
	}

	opt.Run = rep.Run
	if again := mustSend(t, opt); again.Duplicates != 60 || again.Accepted != 0 {
		t.Fatalf("repeated run: %+v, want 60 duplicates", again)
	}

	opt.Run, opt.Codes, opt.Count = "", []string{"no.route"}, 1
	if bad := mustSend(t, opt); bad.Failed != 3 || !equalCounts(bad.Errors, map[string]int{"422 unknown_code": 3}) {
		t.Fatalf("unknown code: %+v, want 3 failures 422 unknown_code", bad)
	}
	opt.Secret = ""
	if unsigned := mustSend(t, opt); unsigned.Failed != 3 || !equalCounts(unsigned.Errors, map[string]int{"401 signature_missing": 3}) {
		t.Fatalf("unsigned: %+v, want 3 failures 401 signature_missing", unsigned)
	}
}
