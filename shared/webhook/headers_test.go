package webhook

import (
	"net/http"
	"testing"
)

func TestHeaderMap(t *testing.T) {
	h := HeaderMap{}
	h.Set("Webhook-ID", "a, b")
	if got := h.Get("WEBHOOK-id"); got != "a, b" {
		t.Errorf("Get = %q, want %q", got, "a, b")
	}
	if got := h["webhook-id"]; got != "a, b" {
		t.Errorf("stored under %v", h)
	}
	if got := h.Get("webhook-timestamp"); got != "" {
		t.Errorf("Get(missing) = %q", got)
	}
}

func TestHTTPHeaders(t *testing.T) {
	h := http.Header{}
	h.Add("Webhook-Signature", "v1,abc= v1,def=")
	h.Add("webhook-signature", "v1,ghi=")
	h.Set("X-Empty", "")
	h["x-lower"] = []string{"lower"} // not canonical, as a hand-built map may be
	h["X-LOWER"] = []string{"upper"}
	hh := HTTPHeaders(h)

	tests := []struct{ name, want string }{
		{"webhook-signature", "v1,abc= v1,def=, v1,ghi="},
		{"WEBHOOK-SIGNATURE", "v1,abc= v1,def=, v1,ghi="},
		{"x-empty", ""},
		{"x-lower", "upper, lower"},
		{"missing", ""},
	}
	for _, tt := range tests {
		if got := hh.Get(tt.name); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := HTTPHeaders(nil).Get("x"); got != "" {
		t.Errorf("HTTPHeaders(nil).Get = %q", got)
	}
}
