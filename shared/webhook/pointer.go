package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ValidatePointer reports whether p is a JSON pointer (RFC 6901) that Parse
// accepts as a tenant pointer: "" (no tenant), or "/" followed by reference
// tokens separated by "/" in which every '~' starts the escape "~0" (for '~')
// or "~1" (for '/'). Its errors wrap ErrInvalidPointer.
func ValidatePointer(p string) error {
	_, err := parsePointer(p)
	return err
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

// arrayIndex parses an RFC 6901 array index: "0" or a decimal number without
// a leading zero that fits in an int.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 1 && tok[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(tok)
	return i, err == nil
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
