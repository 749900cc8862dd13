package webhook

import (
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxListNames is how many member names of an object scan keeps in a list
// and compares each new name with; it keeps any further names in a map. It
// bounds the linear scans, so that an object with many members costs
// O(members), not O(members²), and keeps small objects free of allocation.
const maxListNames = 16

// scanner checks a webhook body in one pass, without allocating per value,
// and records the raw text of the values Parse needs. It holds only byte
// ranges of the body, so it never copies the body.
type scanner struct {
	buf []byte
	pos int // next byte of buf to read

	// ptr is the tenant pointer, valid and escaped. A value on its path is
	// scanned with the index in ptr of the '/' that starts the reference
	// token it must match next (see value).
	ptr string

	// code, data and tenant are the raw text of the top-level "code" and
	// "data" members and of the value at the tenant pointer, without
	// surrounding white space; nil if there is none. They share memory with
	// buf.
	code, data, tenant []byte

	// arena holds the decoded text of the escaped member names that the
	// open objects keep in their lists (see names), innermost object last.
	// A listed name's bytes do not change while its object is open: objects
	// inside it only append to arena and truncate it back to where they
	// started, and a name taken before arena grew keeps the old array.
	arena []byte
}

// scan checks that buf is exactly one JSON object in valid UTF-8 (RFC 8259,
// optionally surrounded by white space), nested at most MaxDepth deep, in
// which no object has two members whose names are equal after decoding
// escapes, and fills in code, data and tenant. Its errors wrap
// ErrMalformedJSON and name byte offsets, never the body's text.
func (s *scanner) scan() error {
	s.space()
	if s.pos == len(s.buf) {
		return s.eof()
	}
	if s.buf[s.pos] != '{' {
		return fmt.Errorf("%w: the top-level value is not an object", ErrMalformedJSON)
	}
	path := -1
	if s.ptr != "" {
		path = 0
	}
	if err := s.object(1, path); err != nil {
		return err
	}
	s.space()
	if s.pos != len(s.buf) {
		return fmt.Errorf("%w: more data after the object", ErrMalformedJSON)
	}
	return nil
}

// value scans the value at s.pos (which is not white space) inside a
// container at depth. If path >= 0, the value is on the tenant pointer's
// path: ptr[:path] selects it, so it is the tenant if path == len(ptr), else
// the token after ptr[path] selects among its members or elements.
func (s *scanner) value(depth, path int) error {
	if s.pos == len(s.buf) {
		return s.eof()
	}
	start := s.pos
	var err error
	switch c := s.buf[s.pos]; c {
	case '{', '[':
		if depth >= MaxDepth {
			return fmt.Errorf("%w: nested deeper than %d", ErrMalformedJSON, MaxDepth)
		}
		if c == '{' {
			err = s.object(depth+1, path)
		} else {
			err = s.array(depth+1, path)
		}
	case '"':
		_, err = s.str()
	case 't':
		err = s.literal("true")
	case 'f':
		err = s.literal("false")
	case 'n':
		err = s.literal("null")
	default:
		err = s.number()
	}
	if err != nil {
		return err
	}
	if path == len(s.ptr) {
		s.tenant = s.buf[start:s.pos]
	}
	return nil
}

// object scans the object at s.pos, which is at depth; see value for path.
func (s *scanner) object(depth, path int) error {
	s.pos++ // '{'
	s.space()
	if s.pos < len(s.buf) && s.buf[s.pos] == '}' {
		s.pos++
		return nil
	}
	var names names
	arenaMark := len(s.arena)
	tok, next := "", -1 // the token selecting a member, and the path of that member
	if path >= 0 && path < len(s.ptr) {
		tok, next = tokenAt(s.ptr, path)
	}
	for {
		if s.pos == len(s.buf) {
			return s.eof()
		}
		if s.buf[s.pos] != '"' {
			return s.syntax()
		}
		start := s.pos
		esc, err := s.str()
		if err != nil {
			return err
		}
		text := s.buf[start+1 : s.pos-1]
		if esc {
			a := len(s.arena)
			s.arena = appendUnquoted(s.arena, text)
			text = s.arena[a:len(s.arena):len(s.arena)]
		}
		if names.add(text) {
			return s.duplicate()
		}

		// Decide what the value is before scanning it, which may reuse the
		// arena bytes of text.
		childPath := -1
		if next >= 0 && tokenIs(tok, text) {
			childPath = next
		}
		isCode := depth == 1 && string(text) == "code"
		isData := depth == 1 && string(text) == "data"
		if names.seen != nil {
			s.arena = s.arena[:arenaMark] // seen holds copies
		}

		s.space()
		if s.pos == len(s.buf) {
			return s.eof()
		}
		if s.buf[s.pos] != ':' {
			return s.syntax()
		}
		s.pos++
		s.space()
		vstart := s.pos
		if err := s.value(depth, childPath); err != nil {
			return err
		}
		switch {
		case isCode:
			s.code = s.buf[vstart:s.pos]
		case isData:
			s.data = s.buf[vstart:s.pos]
		}

		s.space()
		if s.pos == len(s.buf) {
			return s.eof()
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
			s.space()
		case '}':
			s.pos++
			s.arena = s.arena[:arenaMark]
			return nil
		default:
			return s.syntax()
		}
	}
}

// names are the member names of an object, for finding duplicates. A name
// is its text in the body if it has no escapes, else its decoded text in the
// scanner's arena.
type names struct {
	// list holds the names until there are more than maxListNames, then
	// seen holds them all.
	list   [maxListNames][]byte
	listed int
	seen   map[string]struct{}
}

// add adds the name text and reports whether it is a duplicate.
func (n *names) add(text []byte) (dup bool) {
	if n.seen != nil {
		if _, dup := n.seen[string(text)]; dup {
			return true
		}
		n.seen[string(text)] = struct{}{}
		return false
	}
	for _, m := range n.list[:n.listed] {
		if string(m) == string(text) {
			return true
		}
	}
	if n.listed < len(n.list) {
		n.list[n.listed] = text
		n.listed++
		return false
	}
	n.seen = make(map[string]struct{}, 4*len(n.list))
	for _, m := range n.list {
		n.seen[string(m)] = struct{}{}
	}
	n.seen[string(text)] = struct{}{}
	return false
}

// array scans the array at s.pos, which is at depth; see value for path.
func (s *scanner) array(depth, path int) error {
	s.pos++ // '['
	s.space()
	if s.pos < len(s.buf) && s.buf[s.pos] == ']' {
		s.pos++
		return nil
	}
	want, next := -1, -1 // the index of the element on the pointer's path, and its path
	if path >= 0 && path < len(s.ptr) {
		var tok string
		tok, next = tokenAt(s.ptr, path)
		// An escaped token has a '~', so it is no index either way.
		if i, ok := arrayIndex(tok); ok {
			want = i
		}
	}
	for i := 0; ; i++ {
		childPath := -1
		if i == want {
			childPath = next
		}
		if err := s.value(depth, childPath); err != nil {
			return err
		}
		s.space()
		if s.pos == len(s.buf) {
			return s.eof()
		}
		switch s.buf[s.pos] {
		case ',':
			s.pos++
			s.space()
		case ']':
			s.pos++
			return nil
		default:
			return s.syntax()
		}
	}
}

// plain[c] reports whether byte c stands for itself inside a JSON string and
// is ASCII: not a control character, '"', '\\' or the start of a multi-byte
// UTF-8 sequence.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string at s.pos, leaving s.pos after its closing quote, and
// reports whether it has escapes.
func (s *scanner) str() (escaped bool, err error) {
	buf := s.buf
	i := s.pos + 1
	for {
		for i < len(buf) && plain[buf[i]] {
			i++
		}
		if i == len(buf) {
			s.pos = i
			return false, s.eof()
		}
		switch c := buf[i]; {
		case c == '"':
			s.pos = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			if i+1 == len(buf) {
				s.pos = i + 1
				return false, s.eof()
			}
			switch buf[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j == len(buf) {
						s.pos = j
						return false, s.eof()
					}
					if hexDigit(buf[j]) < 0 {
						s.pos = j
						return false, s.syntax()
					}
				}
				i += 6
			default:
				s.pos = i + 1
				return false, s.syntax()
			}
		case c < 0x20:
			s.pos = i
			return false, s.syntax()
		case 0xc2 <= c && c <= 0xdf && i+1 < len(buf) && buf[i+1]&0xc0 == 0x80:
			i += 2 // a 2-byte sequence, as in most Latin, Greek and Cyrillic text
		default:
			r, size := utf8.DecodeRune(buf[i:])
			if r == utf8.RuneError && size == 1 {
				return false, fmt.Errorf("%w: not valid UTF-8 at byte %d", ErrMalformedJSON, i)
			}
			i += size
		}
	}
}

// number scans the number at s.pos: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
func (s *scanner) number() error {
	buf := s.buf
	i := s.pos
	if buf[i] == '-' {
		i++
	}
	switch {
	case i == len(buf):
		return s.eof()
	case buf[i] == '0':
		i++
	case '1' <= buf[i] && buf[i] <= '9':
		i = digits(buf, i+1)
	default:
		s.pos = i
		return s.syntax()
	}
	if i < len(buf) && buf[i] == '.' {
		if i+1 == len(buf) || !isDigit(buf[i+1]) {
			s.pos = i + 1
			return s.endOrSyntax()
		}
		i = digits(buf, i+1)
	}
	if i < len(buf) && (buf[i] == 'e' || buf[i] == 'E') {
		i++
		if i < len(buf) && (buf[i] == '+' || buf[i] == '-') {
			i++
		}
		if i == len(buf) || !isDigit(buf[i]) {
			s.pos = i
			return s.endOrSyntax()
		}
		i = digits(buf, i)
	}
	s.pos = i
	return nil
}

// digits returns the index of the first byte at or after i in buf that is
// not a decimal digit.
func digits(buf []byte, i int) int {
	for i < len(buf) && isDigit(buf[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// hexDigit returns the value of the hexadecimal digit c, or -1.
func hexDigit(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// literal scans the literal lit (true, false or null) at s.pos.
func (s *scanner) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if s.pos == len(s.buf) {
			return s.eof()
		}
		if s.buf[s.pos] != lit[i] {
			return s.syntax()
		}
		s.pos++
	}
	return nil
}

// space skips JSON white space.
func (s *scanner) space() {
	if s.pos < len(s.buf) && s.buf[s.pos] > ' ' {
		return // the common case, kept small enough to inline
	}
	s.spaceSlow()
}

func (s *scanner) spaceSlow() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) eof() error {
	return fmt.Errorf("%w: unexpected end of body", ErrMalformedJSON)
}

func (s *scanner) syntax() error {
	return fmt.Errorf("%w: syntax error at byte %d", ErrMalformedJSON, s.pos)
}

// endOrSyntax reports a syntax error at s.pos, or the end of the body if
// s.pos is there.
func (s *scanner) endOrSyntax() error {
	if s.pos == len(s.buf) {
		return s.eof()
	}
	return s.syntax()
}

func (s *scanner) duplicate() error {
	return fmt.Errorf("%w: duplicate member name before byte %d", ErrMalformedJSON, s.pos)
}

// appendUnquoted appends to dst the decoded text of the JSON string whose
// text between the quotes is q, which scan has checked. It decodes as
// encoding/json does, so that names compare and values decode the same: a
// \u escape of a UTF-16 surrogate that does not pair with the next escape
// becomes U+FFFD.
func appendUnquoted(dst, q []byte) []byte {
	for i := 0; i < len(q); {
		if q[i] != '\\' {
			j := i + 1
			for j < len(q) && q[j] != '\\' {
				j++
			}
			dst = append(dst, q[i:j]...)
			i = j
			continue
		}
		switch c := q[i+1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := u4(q[i:])
			i += 6
			if utf16.IsSurrogate(r) {
				if r2 := u4(q[i:]); r2 >= 0 {
					if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, d)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		i += 2
	}
	return dst
}

// u4 returns the code unit of the \uXXXX escape that q starts with, or -1.
func u4(q []byte) rune {
	if len(q) < 6 || q[0] != '\\' || q[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range q[2:6] {
		d := hexDigit(c)
		if d < 0 {
			return -1
		}
		r = r<<4 | d
	}
	return r
}

// unquote returns the decoded text of the JSON string literal lit (with its
// quotes), which scan has checked.
func unquote(lit []byte) string {
	q := lit[1 : len(lit)-1]
	for _, c := range q {
		if c == '\\' {
			return string(appendUnquoted(make([]byte, 0, len(q)), q))
		}
	}
	return string(q)
}
