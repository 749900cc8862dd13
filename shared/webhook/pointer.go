package webhook

import (
	"fmt"
	"strconv"
	"strings"
)

// ValidatePointer reports whether p is a JSON pointer (RFC 6901) that Parse
// accepts as a tenant pointer: "" (no tenant), or "/" followed by reference
// tokens separated by "/" in which every '~' starts the escape "~0" (for '~')
// or "~1" (for '/'). Its errors wrap ErrInvalidPointer.
func ValidatePointer(p string) error {
	if p == "" {
		return nil
	}
	if p[0] != '/' {
		return fmt.Errorf(`%w: must be empty or start with "/"`, ErrInvalidPointer)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || p[i+1] != '0' && p[i+1] != '1') {
			return fmt.Errorf(`%w: "~" must be followed by "0" or "1"`, ErrInvalidPointer)
		}
	}
	return nil
}

// tokenAt returns the reference token of the valid, non-empty pointer p that
// follows the '/' at p[at], still escaped, and the index of the '/' after it
// (len(p) if it is the last token).
func tokenAt(p string, at int) (tok string, next int) {
	tok = p[at+1:]
	if i := strings.IndexByte(tok, '/'); i >= 0 {
		tok = tok[:i]
	}
	return tok, at + 1 + len(tok)
}

// tokenIs reports whether the escaped reference token tok of a valid pointer
// selects the member with the decoded name.
func tokenIs(tok string, name []byte) bool {
	if strings.IndexByte(tok, '~') < 0 {
		return string(name) == tok
	}
	j := 0
	for i := 0; i < len(tok); i, j = i+1, j+1 {
		c := tok[i]
		if c == '~' {
			i++
			c = '~'
			if tok[i] == '1' {
				c = '/'
			}
		}
		if j == len(name) || name[j] != c {
			return false
		}
	}
	return j == len(name)
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
