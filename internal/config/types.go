package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/ratelimit"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in the file as a Go duration string:
// "500ms", "20s", "1m30s". A bare number is an error: it has no unit.
type Duration time.Duration

// String returns the duration as a Go duration string without trailing
// zero units: "20s", "1m30s", "14m", "24h".
func (d Duration) String() string { return fmtDur(time.Duration(d)) }

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			return nodeError(n, "want a duration with a unit such as \"%ss\", got %s", n.Value, n.Value)
		}
		return nodeError(n, "want a duration such as \"20s\" or \"1m30s\", got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return nodeError(n, "want a duration such as \"20s\" or \"1m30s\", got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// fmtDur formats d like time.Duration.String without trailing zero units.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// rateSetting reads a route's rate: ratelimit.ParseRate's syntax, or ""
// for no limit (the zero ratelimit.Rate). Its errors are located at the
// setting, like every other decoding error of the file.
type rateSetting struct{ ratelimit.Rate }

// UnmarshalYAML reads a rate as ratelimit.ParseRate does.
func (r *rateSetting) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
			return nodeError(n, "want a rate with a period such as \"%s/s\", got %s", n.Value, n.Value)
		}
		return nodeError(n, "want a rate such as \"2/s\" or \"5/2s\", got %s", describe(n))
	}
	if n.Value == "" {
		r.Rate = ratelimit.Rate{}
		return nil
	}
	v, err := ratelimit.ParseRate(n.Value)
	if err != nil {
		var re *ratelimit.RateError
		if errors.As(err, &re) {
			return nodeError(n, "%q: %s", n.Value, re.Reason)
		}
		return nodeError(n, "%q: %s", n.Value, err)
	}
	r.Rate = v
	return nil
}

// byteSize is a number of bytes written as an integer or a size with a
// unit: "256KiB", "1MiB", "500KB".
type byteSize int64

var sizeUnits = []struct {
	name string
	mult int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"b", 1},
}

// parseSize parses a byte count with an optional unit.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	digits := len(t) - len(strings.TrimLeft(t, "0123456789"))
	if digits == 0 {
		return 0, fmt.Errorf("want a size such as \"256KiB\" or \"1MiB\", got %q", s)
	}
	n, err := strconv.ParseInt(t[:digits], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[digits:]))
	if unit == "" {
		return n, nil
	}
	for _, u := range sizeUnits {
		if unit == u.name {
			if n > math.MaxInt64/u.mult {
				return 0, fmt.Errorf("size %q is too large", s)
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("size %q: unit must be B, KB, MB, GB, KiB, MiB or GiB", s)
}

// UnmarshalYAML reads an integer or a size string.
func (b *byteSize) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		return nodeError(n, "want a size such as \"256KiB\" or \"1MiB\", got %s", describe(n))
	}
	v, err := parseSize(n.Value)
	if err != nil {
		return nodeError(n, "%s", err)
	}
	*b = byteSize(v)
	return nil
}

// Scheme is a way of verifying webhook signatures.
type Scheme string

// Signature schemes.
const (
	// SchemeStandardWebhooks checks the Standard Webhooks headers
	// webhook-id, webhook-timestamp and webhook-signature.
	SchemeStandardWebhooks Scheme = "standard-webhooks"
	// SchemeHMAC checks an HMAC-SHA256 of the raw body in one header.
	SchemeHMAC Scheme = "hmac"
	// SchemeNone checks nothing.
	SchemeNone Scheme = "none"
)

// Encodings of an HMAC signature.
const (
	EncodingHex    = "hex"
	EncodingBase64 = "base64"
)

// Verify says how ingest checks webhook signatures. In the file it is either
// a scheme name or a mapping of these fields.
type Verify struct {
	// Scheme is the signature scheme. Default SchemeDefault.
	Scheme Scheme `yaml:"scheme"`
	// Header is the request header holding the signature, for SchemeHMAC
	// (required there). Default "".
	Header string `yaml:"header"`
	// Encoding is EncodingHex or EncodingBase64, for SchemeHMAC. Default
	// EncodingHex with SchemeHMAC, "" with the others.
	Encoding string `yaml:"encoding"`
	// Prefix precedes the encoded signature in Header, such as "sha256=",
	// for SchemeHMAC. Default "".
	Prefix string `yaml:"prefix"`
	// Tolerance is how far the webhook-timestamp header may be from now,
	// for SchemeStandardWebhooks, 1s..1h. Default webhook.ToleranceDefault
	// with SchemeStandardWebhooks, 0 with the others.
	Tolerance Duration `yaml:"tolerance"`
}

var verifyKeys = []string{"scheme", "header", "encoding", "prefix", "tolerance"}

// UnmarshalYAML reads a scheme name ("none", "standard-webhooks", "hmac")
// or a mapping of Verify's fields.
func (v *Verify) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" {
			return nodeError(n, "want a scheme name or a mapping, got %s", describe(n))
		}
		*v = Verify{Scheme: Scheme(n.Value)}
		return nil
	case yaml.MappingNode:
		var errs []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(verifyKeys, k.Value) {
				// in yaml.v3's words, for the error rewriting in errors.go
				errs = append(errs, fmt.Sprintf("line %d: field %s not found in type config.Verify", k.Line, k.Value))
			}
		}
		type plain Verify // without methods, so Decode does not recurse
		var p plain
		if err := n.Decode(&p); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return err
			}
			errs = append(errs, te.Errors...)
		}
		*v = Verify(p)
		if len(errs) > 0 {
			return &yaml.TypeError{Errors: errs}
		}
		return nil
	}
	return nodeError(n, "want a scheme name or a mapping, got %s", describe(n))
}

// resolveAlias returns the node an alias refers to.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// nodeError returns a decoding error located at n, in the form the error
// rewriting in errors.go turns into one naming the setting.
func nodeError(n *yaml.Node, format string, args ...any) *yaml.TypeError {
	return &yaml.TypeError{Errors: []string{
		fmt.Sprintf("line %d column %d: %s", n.Line, n.Column, fmt.Sprintf(format, args...)),
	}}
}

// describe names what n is, for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.ShortTag() == "!!null" {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}
