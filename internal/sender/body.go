package sender

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hookline/hookline/shared/webhook"
)

// errPointerConflict means the tenant pointer points at or through a member
// the body already has.
var errPointerConflict = errors.New("points at or through code, data, data/seq or data/sent_at")

// tokenUnescaper undoes RFC 6901 escapes in one left-to-right pass, so that
// "~01" becomes "~1".
var tokenUnescaper = strings.NewReplacer("~1", "/", "~0", "~")

// splitPointer returns the reference tokens of a non-empty JSON pointer.
func splitPointer(p string) ([]string, error) {
	if err := webhook.ValidatePointer(p); err != nil {
		return nil, fmt.Errorf("%q: %w", p, err)
	}
	if p == "" {
		return nil, fmt.Errorf("%q: %w: the tenant needs a place below the root", p, webhook.ErrInvalidPointer)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		toks[i] = tokenUnescaper.Replace(t)
	}
	return toks, nil
}

// body returns the JSON body of the next webhook of k:
//
//	{"code": <code>, "data": {"seq": <n>, "sent_at": <RFC 3339>}}
//
// with k's tenant put at the tenant pointer.
func (p *plan) body(k *key, sentAt time.Time) ([]byte, error) {
	data := map[string]any{"seq": k.next, "sent_at": sentAt.UTC().Format(time.RFC3339Nano)}
	doc := map[string]any{"code": k.code, "data": data}
	cur := doc
	for i, tok := range p.ptr {
		v, ok := cur[tok]
		if i == len(p.ptr)-1 {
			if ok {
				return nil, fmt.Errorf("%q %w", p.TenantPointer, errPointerConflict)
			}
			cur[tok] = k.tenant
			break
		}
		if !ok {
			m := map[string]any{}
			cur[tok] = m
			cur = m
			continue
		}
		m, isObject := v.(map[string]any)
		if !isObject {
			return nil, fmt.Errorf("%q %w", p.TenantPointer, errPointerConflict)
		}
		cur = m
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("sender: encode body: %w", err)
	}
	return b, nil
}
