package webhook

import (
	"net/http"
	"slices"
	"strings"
)

// Headers gives a verifier the request headers: Get returns the value of the
// header with the given name, matched case-insensitively, exactly as received
// (several values of one header joined with ", ", never split), or "" if
// there is none.
type Headers interface {
	Get(name string) string
}

// HeaderMap is a Headers built from a map whose keys are lower-case header
// names. A key with an upper-case letter is never found.
type HeaderMap map[string]string

// Get returns the value stored under the lower-cased name.
func (m HeaderMap) Get(name string) string { return m[strings.ToLower(name)] }

// Set stores value under the lower-cased name, replacing any previous value.
func (m HeaderMap) Set(name, value string) { m[strings.ToLower(name)] = value }

// HTTPHeaders adapts an http.Header to Headers. Get joins the values of a
// header that was sent several times with ", ", in the order received, and
// does not split values at commas. Names are matched case-insensitively even
// if h has keys that are not in canonical form (as when a map is built by
// hand or by a proxy library): the canonical key is used if present, else all
// keys equal to the name under case folding, in sorted order.
func HTTPHeaders(h http.Header) Headers { return httpHeaders(h) }

// httpHeaders is the Headers that HTTPHeaders returns.
type httpHeaders http.Header

// Get implements Headers.
func (h httpHeaders) Get(name string) string {
	if vs, ok := h[http.CanonicalHeaderKey(name)]; ok {
		return strings.Join(vs, ", ")
	}
	var keys []string
	for k := range h {
		if strings.EqualFold(k, name) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var vs []string
	for _, k := range keys {
		vs = append(vs, h[k]...)
	}
	return strings.Join(vs, ", ")
}
