package queue

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/shared/webhook"
)

// Header is one HTTP header kept with an item.
type Header struct {
	Name  string
	Value string
}

// Item is one webhook as the engine stores it. Body holds the raw request
// body exactly as received.
type Item struct {
	// ID identifies the item within its key: the provider's webhook id when
	// there is one, otherwise a generated time-ordered id (see NewID). It is
	// the idempotency key handlers receive.
	ID string
	// ReceivedAt is when ingest accepted the webhook (millisecond precision).
	ReceivedAt time.Time
	// Tenant and Code make up the item's key, "<tenant>:<code>".
	Tenant string
	Code   string
	// Headers are the request headers ingest chose to keep, in order.
	Headers []Header
	// Body is the raw request body.
	Body []byte
	// PriorAttempts counts the attempts the item used before it was
	// dead-lettered and redriven (over all its earlier lives): its attempt
	// history, kept across a redrive. Zero for an item never redriven.
	PriorAttempts int
}

// Key returns the item's key, "<tenant>:<code>".
func (it *Item) Key() string { return it.Tenant + ":" + it.Code }

// Header returns the value of the first header named name (exact match), or "".
func (it *Item) Header(name string) string {
	for _, h := range it.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// ErrInvalidHeader reports a header name or value with a line break, or a
// name with ':' or a space. It never quotes the value.
var ErrInvalidHeader = errors.New("queue: invalid header")

// validate checks every part of it that the engine relies on.
func (it *Item) validate() error {
	// The rules are webhook's, so that what ingest accepts the engine
	// stores; their errors never quote the value.
	if err := webhook.ValidateTenant(it.Tenant); err != nil {
		return err
	}
	if err := webhook.ValidateCode(it.Code); err != nil {
		return err
	}
	if err := webhook.ValidateID(it.ID); err != nil {
		return err
	}
	for _, h := range it.Headers {
		if h.Name == "" || containsAny(h.Name, ": \r\n") || containsAny(h.Value, "\r\n") {
			return fmt.Errorf("%w: header %q", ErrInvalidHeader, h.Name)
		}
	}
	return nil
}

func containsAny(s, chars string) bool {
	for i := 0; i < len(s); i++ {
		if bytes.IndexByte([]byte(chars), s[i]) >= 0 {
			return true
		}
	}
	return false
}

// The envelope is how an item is stored in its queue list. It holds only
// what the queue's key name does not already say (the tenant and code are
// the key):
//
//	@<id> <received-at ms>[ <header count>][ a<prior attempts>]\n
//	<name>: <value>\n   (once per kept header)
//	<body bytes, exactly as received>
//
// The header count is left out when it is zero, and so is the prior
// attempts field, which only a redrive writes (see Item.PriorAttempts). The id comes first so
// scripts can read it with one anchored match without decoding the rest.
// The overhead over the body is envelopeFixed bytes plus len(id), plus
// len(name)+len(value)+3 per header and 1+digits for a non-zero header
// count, plus one byte per digit of received-at beyond 13 (after the year
// 2286). With a 26-byte generated id and no headers that is 42 bytes.
//
// Envelopes written by earlier versions ("hl1 <id>\n<ms>\n<tenant>\n<code>\n
// <header count>\n" ...) still decode, so an upgrade loses no queued item.
//
// testdata/envelope holds one envelope of each form; TestEnvelopeTestdata
// decodes and re-encodes them, and the redrive script (which rewrites an
// envelope's first line in Lua) is checked against them too.
const envelopeFixed = 16

const (
	envelopeMagic   = "@"
	envelopeMagicV1 = "hl1 "
)

// errBadEnvelope reports a stored envelope that does not decode.
var errBadEnvelope = errors.New("queue: malformed envelope")

// encode renders it as an envelope.
func (it *Item) encode() []byte {
	n := envelopeFixed + 8 + len(it.ID) + len(it.Body)
	for _, h := range it.Headers {
		n += len(h.Name) + len(h.Value) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, envelopeMagic...)
	b = append(b, it.ID...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, it.ReceivedAt.UnixMilli(), 10)
	if len(it.Headers) > 0 {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(len(it.Headers)), 10)
	}
	if it.PriorAttempts > 0 {
		b = append(b, ' ', 'a')
		b = strconv.AppendInt(b, int64(it.PriorAttempts), 10)
	}
	b = append(b, '\n')
	for _, h := range it.Headers {
		b = append(b, h.Name...)
		b = append(b, ':', ' ')
		b = append(b, h.Value...)
		b = append(b, '\n')
	}
	return append(b, it.Body...)
}

// decodeItem parses an envelope of the queue of key. The body aliases b.
func decodeItem(b []byte, key string) (*Item, error) {
	if bytes.HasPrefix(b, []byte(envelopeMagicV1)) {
		return decodeItemV1(b)
	}
	if !bytes.HasPrefix(b, []byte(envelopeMagic)) {
		return nil, errBadEnvelope
	}
	var it Item
	var ok bool
	if it.Tenant, it.Code, ok = strings.Cut(key, ":"); !ok {
		return nil, errBadEnvelope
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return nil, errBadEnvelope
	}
	first := strings.Split(string(b[len(envelopeMagic):nl]), " ")
	rest := b[nl+1:]
	if len(first) < 2 || len(first) > 4 || first[0] == "" {
		return nil, errBadEnvelope
	}
	it.ID = first[0]
	msec, ok := canonicalInt(first[1])
	if !ok {
		return nil, errBadEnvelope
	}
	it.ReceivedAt = time.UnixMilli(msec)
	if last := first[len(first)-1]; len(first) > 2 && strings.HasPrefix(last, "a") {
		prior, ok := canonicalInt(last[1:])
		if !ok || prior < 1 || prior > math.MaxInt32 {
			return nil, errBadEnvelope
		}
		it.PriorAttempts = int(prior)
		first = first[:len(first)-1]
	}
	n := 0
	if len(first) == 4 {
		return nil, errBadEnvelope
	}
	if len(first) == 3 {
		n64, ok := canonicalInt(first[2])
		if !ok || n64 < 1 || n64 > int64(len(rest)) {
			return nil, errBadEnvelope
		}
		n = int(n64)
	}
	if it.Headers, rest, ok = decodeHeaders(rest, n); !ok {
		return nil, errBadEnvelope
	}
	it.Body = rest
	return &it, nil
}

// decodeHeaders reads n "name: value" lines from the start of b.
func decodeHeaders(b []byte, n int) ([]Header, []byte, bool) {
	if n == 0 {
		return nil, b, true
	}
	hs := make([]Header, 0, n)
	for range n {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, nil, false
		}
		name, value, found := cutHeader(string(b[:i]))
		if !found {
			return nil, nil, false
		}
		hs = append(hs, Header{Name: name, Value: value})
		b = b[i+1:]
	}
	return hs, b, true
}

// decodeItemV1 parses an envelope of the first format, which repeated the
// tenant and code.
func decodeItemV1(b []byte) (*Item, error) {
	rest := b[len(envelopeMagicV1):]
	line := func() (string, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		s := string(rest[:i])
		rest = rest[i+1:]
		return s, true
	}
	var it Item
	var ok bool
	var at, count string
	if it.ID, ok = line(); !ok {
		return nil, errBadEnvelope
	}
	if at, ok = line(); !ok {
		return nil, errBadEnvelope
	}
	msec, ok := canonicalInt(at)
	if !ok {
		return nil, errBadEnvelope
	}
	it.ReceivedAt = time.UnixMilli(msec)
	if it.Tenant, ok = line(); !ok {
		return nil, errBadEnvelope
	}
	if it.Code, ok = line(); !ok {
		return nil, errBadEnvelope
	}
	if count, ok = line(); !ok {
		return nil, errBadEnvelope
	}
	n64, ok := canonicalInt(count)
	if !ok || n64 < 0 || n64 > int64(len(rest)) {
		return nil, errBadEnvelope
	}
	if it.Headers, rest, ok = decodeHeaders(rest, int(n64)); !ok {
		return nil, errBadEnvelope
	}
	it.Body = rest
	return &it, nil
}

// canonicalInt parses s only if it is the canonical decimal form of an int64,
// so every envelope has exactly one encoding.
func canonicalInt(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && strconv.FormatInt(v, 10) == s
}

func cutHeader(s string) (name, value string, ok bool) {
	i := bytes.Index([]byte(s), []byte(": "))
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i+2:], true
}

// crockford is the alphabet of generated ids: Crockford's base32, which sorts
// in the same order as the values it encodes.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a 26-character id that sorts by t (millisecond precision):
// 48 bits of Unix milliseconds followed by 80 random bits, in Crockford base32.
func NewID(t time.Time) string {
	var b [16]byte
	msec := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(msec)
		msec >>= 8
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+).
	// 128 bits -> 26 base32 digits (130 bits, the top two are zero).
	var out [26]byte
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
