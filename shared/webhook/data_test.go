package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// TestData: Data extracts the body's "data" object by Parse's rules, byte
// for byte, whatever the code; where encoding/json would read a body
// differently (it matches member names case-insensitively, the last one
// winning), Data still agrees with Parse.
func TestData(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"code":"post.create","data":{"customer_id":"c1","n":[1,2]}}`, `{"customer_id":"c1","n":[1,2]}`},
		{" {\"data\" : {\"x\":\"a\\nb\"} ,\"code\":\"c\"}\n", `{"x":"a\nb"}`},
		{`{"data":{},"code":5}`, `{}`}, // the code is not Data's business
		{`{"code":"c","data":{"a":1},"Data":{"b":2}}`, `{"a":1}`},
		{`{"code":"c","inner":{"data":{"no":1}},"data":{"yes":1}}`, `{"yes":1}`},
	} {
		got, err := Data([]byte(c.body))
		if err != nil || string(got) != c.want {
			t.Errorf("Data(%s) = %s, %v; want %s", c.body, got, err, c.want)
			continue
		}
		if p, err := Parse([]byte(c.body), ""); err == nil && !bytes.Equal(p.Data, got) {
			t.Errorf("Data(%s) = %s, Parse's Data %s", c.body, got, p.Data)
		}
	}
	for _, c := range []struct {
		body string
		want error
	}{
		{``, ErrMalformedJSON},
		{`[]`, ErrMalformedJSON},
		{`{"code":"c","data":{}`, ErrMalformedJSON},
		{`{"code":"c","data":{},"data":{}}`, ErrMalformedJSON},
		{"{\"data\":{\"s\":\"\xff\"}}", ErrMalformedJSON},
		{`{"code":"c"}`, ErrMissingData},
		{`{"code":"c","data":null}`, ErrMissingData},
		{`{"code":"c","data":[1]}`, ErrMissingData},
		{`{"code":"c","data":"{}"}`, ErrMissingData},
	} {
		if got, err := Data([]byte(c.body)); !errors.Is(err, c.want) || got != nil {
			t.Errorf("Data(%q) = %s, %v; want %v", c.body, got, err, c.want)
		}
	}
	// The result is a copy: a handler that changes its event's data does
	// not change the body that forward posts.
	body := []byte(`{"code":"c","data":{"k":1}}`)
	d, err := Data(body)
	if err != nil {
		t.Fatal(err)
	}
	d[1] = 'X'
	if string(body) != `{"code":"c","data":{"k":1}}` {
		t.Fatalf("changing Data's result changed the body: %s", body)
	}
}

// FuzzData: Data never panics or changes its input, succeeds whenever
// Parse does and then returns Parse's Data, and returns either a JSON
// object or an error that Parse would give for the same reason.
func FuzzData(f *testing.F) {
	for _, body := range parseSeeds {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		d, err := Data(body)
		if !bytes.Equal(body, orig) {
			t.Fatalf("Data changed its input")
		}
		p, perr := Parse(body, "")
		if perr == nil && (err != nil || !bytes.Equal(d, p.Data)) {
			t.Fatalf("Parse's Data %s, Data gives %s, %v", p.Data, d, err)
		}
		if err != nil {
			if d != nil || !errors.Is(err, ErrMalformedJSON) && !errors.Is(err, ErrMissingData) {
				t.Fatalf("Data = %s, %v", d, err)
			}
			if errors.Is(perr, ErrMalformedJSON) != errors.Is(err, ErrMalformedJSON) {
				t.Fatalf("Data error %v, Parse error %v: they disagree on the body", err, perr)
			}
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(d, &obj) != nil {
			t.Fatalf("Data = %s, not a JSON object", d)
		}
	})
}
