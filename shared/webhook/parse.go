package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

const (
	// MaxDepth is the deepest nesting of objects and arrays Parse accepts;
	// the top-level object is depth 1.
	MaxDepth = 512
)

// Payload is a parsed webhook body.
type Payload struct {
	// Code is the event code: the decoded "code" string, 1 to MaxCodeLen
	// bytes of printable ASCII without '{' and '}'.
	Code string
	// Data is the "data" object exactly as it appears in the body. It does
	// not share memory with the body passed to Parse.
	Data json.RawMessage
	// Tenant is the value at the tenant pointer: a decoded string, or an
	// integer in canonical decimal form (no exponent, fraction or leading
	// zeros, "-" only for negative numbers), 1 to MaxTenantLen bytes of
	// printable ASCII without ':', '{' and '}'. It is "" if the pointer is "".
	Tenant string
}

// Parse parses an untrusted webhook body of the form
//
//	{"code": "<event code>", "data": {...}}
//
// and derives the tenant from it with tenantPointer, an RFC 6901 JSON pointer
// into the whole body such as "/data/customer_id". If tenantPointer is "",
// no tenant is derived and Payload.Tenant is "" (the pointer "" would select
// the whole body, which is never a valid tenant).
//
// The body must be one JSON object in valid UTF-8 without duplicate member
// names at any depth, nested at most MaxDepth deep; members other than "code"
// and "data" are allowed and ignored. Member names match exactly (not
// case-insensitively).
//
// The tenant value must be a JSON string or a JSON number with an integral
// value; "1e3" and "1000.0" both give the tenant "1000", and numbers of any
// size are kept exact.
//
// Errors wrap ErrMalformedJSON, ErrMissingCode, ErrInvalidCode,
// ErrMissingData, ErrMissingTenant or ErrInvalidTenant, and ErrInvalidPointer
// if tenantPointer fails ValidatePointer. The body is checked before the code,
// the code before the data and the data before the tenant.
func Parse(body []byte, tenantPointer string) (*Payload, error) {
	if err := ValidatePointer(tenantPointer); err != nil {
		return nil, err
	}
	s := scanner{buf: body, ptr: tenantPointer}
	if err := s.scan(); err != nil {
		return nil, err
	}

	p := &Payload{}
	var err error
	if p.Code, err = parseCode(s.code); err != nil {
		return nil, err
	}
	if p.Data, err = parseData(s.data); err != nil {
		return nil, err
	}
	if tenantPointer != "" {
		if p.Tenant, err = parseTenant(s.tenant); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Data returns the "data" object of a webhook body exactly as it appears
// in the body, as Parse's Payload.Data does: the one extraction of a body's
// data, for code that holds a body ingest has parsed and passes its data on
// (a drain building a handler's event). The result does not share memory
// with body.
//
// The body must be one JSON object as Parse requires (valid UTF-8, no
// duplicate member names, at most MaxDepth deep), and its top-level "data"
// member an object; the code and the tenant are not checked. Errors wrap
// ErrMalformedJSON or ErrMissingData.
func Data(body []byte) (json.RawMessage, error) {
	s := scanner{buf: body}
	if err := s.scan(); err != nil {
		return nil, err
	}
	return parseData(s.data)
}

// parseData checks the raw "data" value, which scan has checked (nil means
// absent), and returns a copy of it.
func parseData(raw []byte) (json.RawMessage, error) {
	switch {
	case len(raw) == 0:
		return nil, fmt.Errorf("%w: no data member", ErrMissingData)
	case raw[0] != '{':
		return nil, fmt.Errorf("%w: data is %s, not an object", ErrMissingData, kind(raw))
	}
	return bytes.Clone(raw), nil
}

// parseCode checks and decodes the raw "code" value, which scan has checked;
// nil means absent.
func parseCode(raw []byte) (string, error) {
	switch {
	case len(raw) == 0:
		return "", fmt.Errorf("%w: no code member", ErrMissingCode)
	case string(raw) == "null":
		return "", fmt.Errorf("%w: code is null", ErrMissingCode)
	case raw[0] != '"':
		return "", fmt.Errorf("%w: code is %s, not a string", ErrInvalidCode, kind(raw))
	}
	code := unquote(raw)
	if code == "" {
		return "", fmt.Errorf("%w: code is empty", ErrMissingCode)
	}
	if ValidateCode(code) != nil {
		return "", fmt.Errorf("%w: code must be 1 to %d bytes of printable ASCII without '{' and '}'",
			ErrInvalidCode, MaxCodeLen)
	}
	return code, nil
}

// parseTenant checks and renders the raw value the tenant pointer selects,
// which scan has checked; nil means there is none.
func parseTenant(raw []byte) (string, error) {
	var tenant string
	switch {
	case len(raw) == 0:
		return "", fmt.Errorf("%w: the tenant pointer selects nothing", ErrMissingTenant)
	case string(raw) == "null":
		return "", fmt.Errorf("%w: tenant is null", ErrMissingTenant)
	case raw[0] == '"':
		if tenant = unquote(raw); tenant == "" {
			return "", fmt.Errorf("%w: tenant is empty", ErrMissingTenant)
		}
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		var ok bool
		if tenant, ok = canonicalInt(string(raw), MaxTenantLen); !ok {
			return "", fmt.Errorf("%w: tenant number is not an integer of at most %d bytes",
				ErrInvalidTenant, MaxTenantLen)
		}
	default:
		return "", fmt.Errorf("%w: tenant is %s, not a string or number", ErrInvalidTenant, kind(raw))
	}
	if ValidateTenant(tenant) != nil {
		return "", fmt.Errorf("%w: tenant must be 1 to %d bytes of printable ASCII without ':', '{' and '}'",
			ErrInvalidTenant, MaxTenantLen)
	}
	return tenant, nil
}

// canonicalInt renders the JSON number num, which must be valid JSON number
// syntax, as a decimal integer without exponent, fraction, leading zeros or
// "-0". It reports false if num is not integral or the result would be longer
// than max bytes. It works on the digits, never on a float64 or an unbounded
// big number, so "1e999999999" costs nothing and large integers stay exact.
func canonicalInt(num string, max int) (string, bool) {
	neg := strings.HasPrefix(num, "-")
	if neg {
		num = num[1:]
	}
	mant, exp := num, ""
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		mant, exp = num[:i], num[i+1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) // digits[:point] is the integer part
	trimmed := strings.TrimLeft(digits, "0")
	point -= len(digits) - len(trimmed)
	digits = strings.TrimRight(trimmed, "0")
	if digits == "" {
		return "0", true
	}
	if exp != "" {
		e, ok := smallExp(exp)
		if !ok {
			// |exp| >= 1e6 with a non-zero mantissa: far too long, or
			// not an integer.
			return "", false
		}
		point += e
	}
	if point < len(digits) {
		return "", false
	}
	n := point
	if neg {
		n++
	}
	if n > max {
		return "", false
	}
	var b strings.Builder
	b.Grow(n)
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(digits)
	for range point - len(digits) {
		b.WriteByte('0')
	}
	return b.String(), true
}

// smallExp parses a JSON exponent ("+5", "-007", "12"), reporting false if its
// magnitude is 1e6 or more.
func smallExp(s string) (int, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	s = strings.TrimLeft(s, "0")
	if len(s) > 6 {
		return 0, false
	}
	if s == "" {
		return 0, true
	}
	e, err := strconv.Atoi(s)
	if err != nil {
		return 0, false
	}
	if neg {
		e = -e
	}
	return e, true
}

// kind names the JSON type of the valid, trimmed JSON value v, for error
// messages that must not quote v itself.
func kind(v []byte) string {
	switch {
	case len(v) == 0:
		return "empty"
	case v[0] == '{':
		return "an object"
	case v[0] == '[':
		return "an array"
	case v[0] == '"':
		return "a string"
	case v[0] == 't' || v[0] == 'f':
		return "a boolean"
	case v[0] == 'n':
		return "null"
	default:
		return "a number"
	}
}
