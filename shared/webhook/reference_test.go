package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// This file keeps the first implementation of Parse, which leaned on
// encoding/json for every check, as the reference that the single-pass
// scanner is tested against (FuzzParseMatchesReference) and benchmarked
// beside (BenchmarkParse). It walks the body three times: checkBodyReference
// with json.Decoder.Token, json.Unmarshal into a map, and resolve.

// parseReference is the reference implementation of Parse, with the same
// contract.
func parseReference(body []byte, tenantPointer string) (*Payload, error) {
	toks, err := parsePointer(tenantPointer)
	if err != nil {
		return nil, err
	}
	if err := checkBodyReference(body); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		// checkBodyReference accepted it, so this is not expected; do not
		// echo the decoder's message, which quotes the input.
		return nil, fmt.Errorf("%w: cannot decode", ErrMalformedJSON)
	}

	p := &Payload{}
	if p.Code, err = parseCodeReference(top["code"]); err != nil {
		return nil, err
	}
	data := trimSpace(top["data"])
	switch {
	case len(data) == 0:
		return nil, fmt.Errorf("%w: no data member", ErrMissingData)
	case data[0] != '{':
		return nil, fmt.Errorf("%w: data is %s, not an object", ErrMissingData, kind(data))
	}
	p.Data = data
	if tenantPointer != "" {
		v, ok := resolve(body, toks)
		if !ok {
			return nil, fmt.Errorf("%w: the tenant pointer selects nothing", ErrMissingTenant)
		}
		if p.Tenant, err = parseTenantReference(v); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// parseCodeReference checks and decodes the raw "code" member; nil means
// absent.
func parseCodeReference(raw json.RawMessage) (string, error) {
	raw = trimSpace(raw)
	switch {
	case len(raw) == 0:
		return "", fmt.Errorf("%w: no code member", ErrMissingCode)
	case string(raw) == "null":
		return "", fmt.Errorf("%w: code is null", ErrMissingCode)
	case raw[0] != '"':
		return "", fmt.Errorf("%w: code is %s, not a string", ErrInvalidCode, kind(raw))
	}
	var code string
	if err := json.Unmarshal(raw, &code); err != nil {
		return "", fmt.Errorf("%w: cannot decode code", ErrInvalidCode)
	}
	if code == "" {
		return "", fmt.Errorf("%w: code is empty", ErrMissingCode)
	}
	if !validToken(code, MaxCodeLen, "{}") {
		return "", fmt.Errorf("%w: code must be 1 to %d bytes of printable ASCII without '{' and '}'",
			ErrInvalidCode, MaxCodeLen)
	}
	return code, nil
}

// parseTenantReference checks and renders the raw value the tenant pointer
// selects.
func parseTenantReference(raw json.RawMessage) (string, error) {
	var tenant string
	switch {
	case len(raw) == 0:
		return "", fmt.Errorf("%w: the tenant pointer selects nothing", ErrMissingTenant)
	case string(raw) == "null":
		return "", fmt.Errorf("%w: tenant is null", ErrMissingTenant)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &tenant); err != nil {
			return "", fmt.Errorf("%w: cannot decode tenant", ErrInvalidTenant)
		}
		if tenant == "" {
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
	if !validToken(tenant, MaxTenantLen, ":{}") {
		return "", fmt.Errorf("%w: tenant must be 1 to %d bytes of printable ASCII without ':', '{' and '}'",
			ErrInvalidTenant, MaxTenantLen)
	}
	return tenant, nil
}

// frame is one open object or array while checkBodyReference walks the body.
type frame struct {
	names   map[string]struct{} // member names seen so far; nil for an array
	wantKey bool                // an object expects a member name or '}' next
}

// checkBodyReference reports an error wrapping ErrMalformedJSON unless body
// is valid UTF-8 holding exactly one JSON value, which is an object, nested
// at most MaxDepth deep, in which no object has two members with the same
// name (after decoding escapes, so "a" and "\u0061" are the same name).
func checkBodyReference(body []byte) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: not valid UTF-8", ErrMalformedJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep numbers as text: no float parsing, no range errors

	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%w: the top-level value is not an object", ErrMalformedJSON)
	}
	stack := []frame{{names: map[string]struct{}{}, wantKey: true}}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		top := &stack[len(stack)-1]
		if name, ok := tok.(string); ok && top.wantKey {
			if _, dup := top.names[name]; dup {
				return fmt.Errorf("%w: duplicate member name before byte %d", ErrMalformedJSON, dec.InputOffset())
			}
			top.names[name] = struct{}{}
			top.wantKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= MaxDepth {
					return fmt.Errorf("%w: nested deeper than %d", ErrMalformedJSON, MaxDepth)
				}
				f := frame{}
				if d == '{' {
					f = frame{names: map[string]struct{}{}, wantKey: true}
				}
				stack = append(stack, f)
				continue
			default: // '}' or ']'
				stack = stack[:len(stack)-1]
			}
		}
		// A value has ended; an enclosing object wants a name next.
		if len(stack) > 0 && stack[len(stack)-1].names != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: more data after the object", ErrMalformedJSON)
	}
	return nil
}

// syntaxError wraps a json.Decoder error in ErrMalformedJSON without its
// message, which may quote the input.
func syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: syntax error at byte %d", ErrMalformedJSON, se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: unexpected end of body", ErrMalformedJSON)
	default:
		return fmt.Errorf("%w: syntax error", ErrMalformedJSON)
	}
}

// parsePointer splits an RFC 6901 JSON pointer into its reference tokens with
// the escapes undone. "" is the whole document: no tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf(`%w: must be empty or start with "/"`, ErrInvalidPointer)
	}
	toks := make([]string, 0, strings.Count(p, "/"))
	for raw := range strings.SplitSeq(p[1:], "/") {
		tok, ok := unescapeToken(raw)
		if !ok {
			return nil, fmt.Errorf(`%w: "~" must be followed by "0" or "1"`, ErrInvalidPointer)
		}
		toks = append(toks, tok)
	}
	return toks, nil
}

// unescapeToken turns "~1" into "/" and "~0" into "~" in one left-to-right
// pass, so "~01" becomes "~1" as RFC 6901 requires. It reports false for a
// '~' not followed by '0' or '1'.
func unescapeToken(s string) (string, bool) {
	if !strings.Contains(s, "~") {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '~' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return "", false
		}
		switch s[i+1] {
		case '0':
			b.WriteByte('~')
		case '1':
			b.WriteByte('/')
		default:
			return "", false
		}
		i++
	}
	return b.String(), true
}

// resolve returns the value that the reference tokens toks select in the JSON
// text doc, without surrounding white space, and whether there is one. A token
// selects an object member by its exact (unescaped) name, or an array element
// by a decimal index without leading zeros; "-" and indexes past the end
// select nothing, as does any token applied to a scalar. If an object has
// duplicate names the last one counts. doc must be valid JSON.
func resolve(doc []byte, toks []string) (json.RawMessage, bool) {
	cur := trimSpace(doc)
	for _, tok := range toks {
		if len(cur) == 0 {
			return nil, false
		}
		switch cur[0] {
		case '{':
			var m map[string]json.RawMessage
			if json.Unmarshal(cur, &m) != nil {
				return nil, false
			}
			v, ok := m[tok]
			if !ok {
				return nil, false
			}
			cur = trimSpace(v)
		case '[':
			i, ok := arrayIndex(tok)
			if !ok {
				return nil, false
			}
			var a []json.RawMessage
			if json.Unmarshal(cur, &a) != nil || i >= len(a) {
				return nil, false
			}
			cur = trimSpace(a[i])
		default:
			return nil, false
		}
	}
	return cur, true
}

// trimSpace removes JSON white space from both ends of b.
func trimSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
