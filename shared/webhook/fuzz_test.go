package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// parseSeeds are bodies for FuzzParse and FuzzPointer.
var parseSeeds = []string{
	`{"code":"order.created","data":{"customer_id":"c_42"}}`,
	`{"code":"a:b","data":{"customer_id":42},"extra":[1,2,{"x":null}]}`,
	`{"code":"a","data":{"customer_id":-1.5e3}}`,
	`{"code":"a","data":{"customer_id":123456789012345678901234567890}}`,
	`{"code":"a","data":{"customer_id":1e999999999}}`,
	`{"code":"a","data":{"customer_id":0.0e-99}}`,
	`{"code":"a","data":{"customer":{"ids":["t0",{"a/b":"t1","m~n":2}]}}}`,
	`{"code":"a","data":{"":{"":"empty"}}}`,
	`{"\u0063ode":"\u0041","data":{"customer_id":"\ud83d\ude00"}}`,
	`{"code":"a","data":{"customer_id":"x"},"code":"b"}`,
	`{"code":"a","data":{"l":[{"k":1,"k":2}]}}`,
	`{"code":"a","data":{"a":"\ud800","b":"\ud801"}}`,
	`{"code":"a","data":{"\ud800":1,"\ud801":2}}`,
	`{"code":null,"data":null}`,
	`{"code":"","data":[]}`,
	`{"code":{"x":1},"data":"s"}`,
	`{"code":"a","data":{}} {}`,
	`{"code":"a","data":{},}`,
	`{"code":"a","data":{"k":[[[[[[[[]]]]]]]]}}`,
	`[{"code":"a","data":{}}]`,
	`"code"`,
	`null`,
	``,
	" \t\r\n{ } ",
	"{\"code\":\"a\",\"data\":{\"k\":\"\xff\"}}",
	`{"code":"a","data":{"customer_id":"a:b"}}`,
	`{"code":"{a}","data":{"customer_id":"t"}}`,
}

// parsePointers are pointers for FuzzParse and FuzzPointer.
var parsePointers = []string{
	"", "/data/customer_id", "/data/customer/ids/1/a~1b", "/data/customer/ids/1/m~0n",
	"/data//", "/code", "/data/l/0/k", "/data/customer/ids/01", "/data/customer/ids/-",
	"/data/a", "/data/é", "data", "/~2", "/~",
}

func FuzzParse(f *testing.F) {
	for _, body := range parseSeeds {
		for _, p := range parsePointers[:7] {
			f.Add([]byte(body), p)
		}
	}
	f.Add([]byte(`{"code":"a","data":{"k":`+strings.Repeat("[", MaxDepth+1)+strings.Repeat("]", MaxDepth+1)+`}}`), "")

	f.Fuzz(func(t *testing.T, body []byte, ptr string) {
		orig := bytes.Clone(body)
		p, err := Parse(body, ptr)
		if !bytes.Equal(body, orig) {
			t.Fatalf("Parse changed its input")
		}
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned %+v and %v", p, err)
			}
			if ErrorCode(err) == "" && !errors.Is(err, ErrInvalidPointer) {
				t.Fatalf("Parse error %v has no machine code", err)
			}
			if errors.Is(err, ErrInvalidPointer) != (ValidatePointer(ptr) != nil) {
				t.Fatalf("Parse error %v disagrees with ValidatePointer", err)
			}
			msg := err.Error()
			for i := 0; i < len(msg); i++ {
				if msg[i] < 0x20 || msg[i] > 0x7e {
					t.Fatalf("error %q is not printable ASCII", msg)
				}
			}
			if len(body) >= 16 && strings.Contains(msg, string(body)) {
				t.Fatalf("error %q echoes the body", msg)
			}
			// A syntactically valid object is rejected only for a
			// duplicate name or depth.
			if errors.Is(err, ErrMalformedJSON) && json.Valid(body) && utf8.Valid(body) {
				if b := trimSpace(body); len(b) > 0 && b[0] == '{' &&
					!strings.Contains(msg, "duplicate") && !strings.Contains(msg, "deeper") {
					t.Fatalf("valid JSON object rejected: %v", err)
				}
			}
			return
		}

		if !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("Parse accepted invalid JSON")
		}
		var top map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&top); err != nil {
			t.Fatalf("accepted body does not decode as an object: %v", err)
		}
		if code, _ := top["code"].(string); code != p.Code || !validToken(p.Code, MaxCodeLen, "{}") {
			t.Fatalf("Code = %q, body has %q", p.Code, code)
		}
		if _, ok := top["data"].(map[string]any); !ok {
			t.Fatalf("data is not an object: %s", p.Data)
		}
		var data map[string]any
		dec = json.NewDecoder(bytes.NewReader(p.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			t.Fatalf("Data does not decode as an object: %v", err)
		}
		if ptr == "" {
			if p.Tenant != "" {
				t.Fatalf("Tenant = %q without a pointer", p.Tenant)
			}
		} else if !validToken(p.Tenant, MaxTenantLen, ":{}") {
			t.Fatalf("Tenant %q is not valid", p.Tenant)
		}
	})
}

// jsonNumber matches a JSON number with an exponent of at most three digits,
// which math/big can take as a reference.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?0*[0-9]{1,3})?$`)

func FuzzCanonicalInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "7", "-12", "1e3", "1.5", "1.50e1", "100e-2", "0.001e3", "1e127", "1e128",
		"-1e127", "1e999999999", "0e999999999", "1e-999999999", "123456789012345678901234567890", "1E+0002", "5e-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		if !json.Valid(b) || len(trimSpace(b)) != len(b) || s == "" || s[0] != '-' && (s[0] < '0' || s[0] > '9') {
			return
		}
		got, ok := canonicalInt(s, MaxTenantLen)
		if ok && (got == "" || len(got) > MaxTenantLen || got != "0" && (strings.TrimLeft(got, "-")[0] == '0') || got == "-0") {
			t.Fatalf("canonicalInt(%q) = %q, not canonical", s, got)
		}
		if !jsonNumber.MatchString(s) {
			return
		}
		r, rok := new(big.Rat).SetString(s)
		if !rok {
			t.Fatalf("big.Rat cannot parse %q", s)
		}
		want, wantOK := "", false
		if r.IsInt() {
			want = r.Num().String()
			wantOK = len(want) <= MaxTenantLen
		}
		if !wantOK {
			want = ""
		}
		if got != want || ok != wantOK {
			t.Fatalf("canonicalInt(%q) = %q, %v; big.Rat says %q, %v", s, got, ok, want, wantOK)
		}
	})
}

func FuzzPointer(f *testing.F) {
	for _, body := range parseSeeds {
		for _, p := range parsePointers {
			f.Add([]byte(body), p)
		}
	}
	f.Add([]byte(`[1,[2,[3]]]`), "/1/1/0")
	f.Add([]byte(`"x"`), "")
	f.Add([]byte(`{"a":1,"a":2}`), "/a")
	f.Add([]byte(`{"a~b":{"c/d":[0,{"":[1,2]}]},"~1":3}`), "/a~0b/c~1d/1//1")
	f.Add([]byte(`{"a~b":1,"a~0b":2,"a/b":3,"a~1b":4}`), "/a~0b")
	f.Add([]byte(`{"\u007e1":1,"\/":2}`), "/~01")
	f.Add([]byte(`{"l":[0,1,2,3,4,5,6,7,8,9,10]}`), "/l/10")

	f.Fuzz(func(t *testing.T, doc []byte, ptr string) {
		toks, err := parsePointer(ptr)
		if err != nil {
			if !errors.Is(err, ErrInvalidPointer) || ValidatePointer(ptr) == nil {
				t.Fatalf("parsePointer(%q) = %v, ValidatePointer disagrees", ptr, err)
			}
			return
		}
		if len(toks) != strings.Count(ptr, "/") {
			t.Fatalf("parsePointer(%q) = %q", ptr, toks)
		}
		if !json.Valid(doc) {
			return
		}
		got, ok := resolve(doc, toks)

		// Reference: decode everything and walk the Go values.
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var cur any
		if err := dec.Decode(&cur); err != nil {
			t.Fatalf("valid JSON does not decode: %v", err)
		}
		wantOK := true
		for _, tok := range toks {
			switch c := cur.(type) {
			case map[string]any:
				cur, wantOK = c[tok]
			case []any:
				i, err := strconv.Atoi(tok)
				if err != nil || i < 0 || i >= len(c) || strconv.Itoa(i) != tok {
					wantOK = false
				} else {
					cur = c[i]
				}
			default:
				wantOK = false
			}
			if !wantOK {
				break
			}
		}
		if ok != wantOK {
			t.Fatalf("resolve(%q) found = %v, reference %v", ptr, ok, wantOK)
		}
		// The scanner, which walks the pointer as it checks an object
		// without duplicate names, must select the same text.
		if s := (scanner{buf: doc, ptr: ptr}); ptr != "" && s.scan() == nil {
			if (s.tenant != nil) != ok || !bytes.Equal(s.tenant, got) {
				t.Fatalf("scanner selects %q with %q, resolve %q, %v", s.tenant, ptr, got, ok)
			}
		}
		if !ok {
			return
		}
		if !json.Valid(got) || len(trimSpace(got)) != len(got) {
			t.Fatalf("resolve(%q) = %q, not a trimmed JSON value", ptr, got)
		}
		dec = json.NewDecoder(bytes.NewReader(got))
		dec.UseNumber()
		var gotV any
		if err := dec.Decode(&gotV); err != nil {
			t.Fatalf("result does not decode: %v", err)
		}
		gotJ, err1 := json.Marshal(gotV)
		wantJ, err2 := json.Marshal(cur)
		if err1 != nil || err2 != nil || !bytes.Equal(gotJ, wantJ) {
			t.Fatalf("resolve(%q) = %s, reference %s (%v, %v)", ptr, gotJ, wantJ, err1, err2)
		}
	})
}

func FuzzStandardVerify(f *testing.F) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	good := mustSignStandard(f, secretA, "msg_1", testNow, testBody)
	f.Add("msg_1", ts, good, testBody)
	f.Add("msg_1", ts, "v1,abc= v1,def= "+good, testBody)
	f.Add("msg_1", ts, "v1,abc= v1,def=", testBody)
	f.Add("msg_1", ts, good+", "+good, testBody)
	f.Add("msg_1", ts, "v1a,"+good[3:]+" v2,x v1,", testBody)
	f.Add("msg_1", "00"+ts, good, testBody)
	f.Add("msg_1", "+"+ts, good, testBody)
	f.Add("msg_1", "-1", good, testBody)
	f.Add("msg_1", "99999999999999999999", good, testBody)
	f.Add("msg_1", ts+".0", good, []byte{})
	f.Add("", ts, good, testBody)
	f.Add("msg_1", "", good, testBody)
	f.Add("msg_1", ts, "", testBody)
	f.Add("a.b", ts, "v1,"+strings.Repeat("A", 44), []byte("\x00\xff"))
	f.Add("msg_1", ts, strings.Repeat("v1, ", 100), testBody)

	v, err := NewStandard([]string{secretA, secretB}, 0)
	if err != nil {
		f.Fatalf("NewStandard: %v", err)
	}
	ref, err := standardwebhooks.NewWebhook(secretA)
	if err != nil {
		f.Fatalf("reference NewWebhook: %v", err)
	}
	f.Fuzz(func(t *testing.T, id, tsText, sig string, body []byte) {
		h := HeaderMap{HeaderID: id, HeaderTimestamp: tsText, HeaderSignature: sig}
		err := v.Verify(h, body, testNow)
		if err != nil {
			if ErrorCode(err) == "" {
				t.Fatalf("Verify error %v has no machine code", err)
			}
			if len(sig) >= 8 && strings.Contains(err.Error(), sig) {
				t.Fatalf("error %q echoes the signature", err)
			}
			assertNoSecrets(t, err, secretA, secretB)
		} else {
			// Accepted: some entry must be a real signature.
			n, _ := strconv.ParseInt(tsText, 10, 64)
			wantA := mustSignStandard(t, secretA, id, time.Unix(n, 0), body)
			wantB := mustSignStandard(t, secretB, id, time.Unix(n, 0), body)
			if !strings.Contains(sig, wantA) && !strings.Contains(sig, wantB) {
				t.Fatalf("Verify accepted %q without a valid signature", sig)
			}
		}

		if id == "" {
			return
		}
		// What we sign, we and the reference accept; what the reference
		// signs, we accept.
		ours := mustSignStandard(t, secretA, id, testNow, body)
		if err := v.Verify(standardHeaders(id, testNow, sig+" "+ours), body, testNow); err != nil {
			t.Fatalf("Verify rejects our own signature: %v", err)
		}
		hh := http.Header{}
		hh.Set(HeaderID, id)
		hh.Set(HeaderTimestamp, strconv.FormatInt(testNow.Unix(), 10))
		hh.Set(HeaderSignature, ours)
		if err := ref.VerifyIgnoringTimestamp(body, hh); err != nil {
			t.Fatalf("reference rejects our signature: %v", err)
		}
		refSig, err := ref.Sign(id, testNow, body)
		if err != nil {
			t.Fatalf("reference Sign: %v", err)
		}
		if refSig != ours {
			t.Fatalf("reference signs %q, we sign %q", refSig, ours)
		}
	})
}

func FuzzHMACVerify(f *testing.F) {
	body := []byte(`{"action":"opened"}`)
	gh := SignHMAC(githubConfig, "key-one", body)
	sh := SignHMAC(shopifyConfig, "key-two", body)
	for _, s := range []string{gh, sh, gh[7:], "sha256=" + strings.ToUpper(gh[7:]), "sha256=", "sha256=zz",
		strings.TrimRight(sh, "="), sh + "\n", "", " ", gh + ", " + gh, "sha256=" + sh} {
		f.Add(s, body)
	}
	f.Add(gh, []byte{})
	gv, err := NewHMAC(githubConfig, []string{"key-one", "key-two"})
	if err != nil {
		f.Fatalf("NewHMAC: %v", err)
	}
	sv, err := NewHMAC(shopifyConfig, []string{"key-one", "key-two"})
	if err != nil {
		f.Fatalf("NewHMAC: %v", err)
	}
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		for _, c := range []struct {
			cfg HMACConfig
			v   *HMAC
		}{{githubConfig, gv}, {shopifyConfig, sv}} {
			err := c.v.Verify(HeaderMap{strings.ToLower(c.cfg.Header): sig}, body, time.Time{})
			if err != nil {
				if ErrorCode(err) == "" {
					t.Fatalf("Verify error %v has no machine code", err)
				}
				if len(sig) >= 8 && strings.Contains(err.Error(), sig) {
					t.Fatalf("error %q echoes the signature", err)
				}
				assertNoSecrets(t, err, "key-one", "key-two")
			} else {
				s1, s2 := SignHMAC(c.cfg, "key-one", body), SignHMAC(c.cfg, "key-two", body)
				if c.cfg.Encoding == EncodingHex {
					sig = strings.ToLower(sig)
				}
				if sig != s1 && sig != s2 {
					t.Fatalf("%s accepted %q, want %q or %q", c.cfg.Header, sig, s1, s2)
				}
			}
			for _, secret := range []string{"key-one", "key-two"} {
				if err := c.v.Verify(HeaderMap{strings.ToLower(c.cfg.Header): SignHMAC(c.cfg, secret, body)}, body, time.Time{}); err != nil {
					t.Fatalf("%s rejects its own signature: %v", c.cfg.Header, err)
				}
			}
		}
	})
}
