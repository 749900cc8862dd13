package webhook

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// referenceSeeds are bodies chosen to find where Parse and parseReference
// might disagree: escapes, surrogates, numbers, depth, duplicate names in
// lists and maps, UTF-8 inside and outside strings, white space and trailing
// data. Each is tried with every pointer in referencePointers.
var referenceSeeds = []string{
	// Escaped member names.
	`{"c\u006fde":"a","d\u0061ta":{"customer_\u0069d":"t"}}`,
	`{"code":"a","data":{"a\/b":"x","a/b":"y"}}`,
	`{"code":"a","data":{"a\/b":"x","a~b":"y","a\"b":"z","a\\b":"w"}}`,
	`{"code":"a","data":{"\b\f\n\r\t":"x","\u0008\u000c\u000a\u000d\u0009":"y"}}`,
	`{"code":"a","data":{"\u00e9":1,"é":2}}`,
	`{"code":"a","data":{"\u00E9":1,"\u00e9":2}}`,
	`{"code":"a","data":{"customer_id":"t","customer_i\u0064":"u"}}`,
	`{"code":"a","data":{"ab":1,"a":2,"":3,"a\u0000":4,"a\u0000b":5}}`,
	`{"code":"a","data":{"":1,"":2}}`,
	`{"code":"a","data":{"\u0000":1,"\u0000":2}}`,
	// Surrogates: a valid pair, lone halves (which decode to U+FFFD), and
	// halves in the wrong order or followed by other escapes.
	`{"code":"a","data":{"\ud83d\ude00":"pair","😀":"raw"}}`,
	`{"code":"a","data":{"\uD83D\uDE00":"pair"}}`,
	`{"code":"a","data":{"\ud800":1,"\ufffd":2}}`,
	`{"code":"a","data":{"\udc00":1,"�":2}}`,
	`{"code":"a","data":{"\ude00\ud83d":"swapped"}}`,
	`{"code":"a","data":{"\ud800\u0041":"t"}}`,
	`{"code":"a","data":{"\ud800\ud800\udc00":"t"}}`,
	`{"code":"a","data":{"\ud800\n":"t","\ud800x":"u"}}`,
	`{"code":"\ud800","data":{"customer_id":"\udfff"}}`,
	`{"code":"a","data":{"customer_id":"\ud83d\ude00"}}`,
	`{"code":"a","data":{"k":"\u12"}}`,
	`{"code":"a","data":{"k":"\u12G4"}}`,
	`{"code":"a","data":{"k":"\U0041"}}`,
	`{"code":"a","data":{"k":"\'"}}`,
	`{"code":"a","data":{"k":"\`,
	`{"code":"a","data":{"k":"\u`,
	`{"code":"a","data":{"k":"\u00`,
	// Numbers.
	`{"code":"a","data":{"customer_id":-0}}`,
	`{"code":"a","data":{"customer_id":1e5}}`,
	`{"code":"a","data":{"customer_id":1.0e2}}`,
	`{"code":"a","data":{"customer_id":1E+2}}`,
	`{"code":"a","data":{"customer_id":1e-0}}`,
	`{"code":"a","data":{"customer_id":-0.0}}`,
	`{"code":"a","data":{"customer_id":10e-1}}`,
	`{"code":"a","data":{"customer_id":-}}`,
	`{"code":"a","data":{"customer_id":1.}}`,
	`{"code":"a","data":{"customer_id":.5}}`,
	`{"code":"a","data":{"customer_id":+1}}`,
	`{"code":"a","data":{"customer_id":01}}`,
	`{"code":"a","data":{"customer_id":-01}}`,
	`{"code":"a","data":{"customer_id":1.e5}}`,
	`{"code":"a","data":{"customer_id":1e}}`,
	`{"code":"a","data":{"customer_id":1e+}}`,
	`{"code":"a","data":{"customer_id":0x10}}`,
	`{"code":"a","data":{"customer_id":NaN}}`,
	`{"code":"a","data":{"customer_id":Infinity}}`,
	`{"code":"a","data":{"customer_id":1`,
	`{"code":"a","data":{"customer_id":1.5`,
	`{"code":"a","data":{"customer_id":-`,
	`{"code":"a","data":{"customer_id":1e`,
	`{"code":1,"data":{}}`,
	`{"code":"a","data":0}`,
	// Literals.
	`{"code":"a","data":{"customer_id":true,"f":false,"n":null}}`,
	`{"code":"a","data":{"customer_id":tru}}`,
	`{"code":"a","data":{"customer_id":truee}}`,
	`{"code":"a","data":{"customer_id":True}}`,
	`{"code":"a","data":{"customer_id":nul`,
	`{"code":"a","data":{"customer_id":nulL}}`,
	// Duplicate names at depth, in arrays, in sibling objects.
	`{"code":"a","data":{"x":{"y":{"z":1,"z":2}}}}`,
	`{"code":"a","data":{"x":[{"k":1},{"k":1,"j":2,"k":3}]}}`,
	`{"code":"a","data":{"x":{"k":1},"y":{"k":1},"x":2}}`,
	`{"code":"a","data":{"customer_id":"t"},"x":{"data":1,"data":2}}`,
	`{"code":"a","data":{"x":{"a":{"b":1},"b":{"a":1}},"y":[[{"a":1}],[{"a":1,"b":[{"a":1,"a":1}]}]]}}`,
	// Structure.
	`{"code":"a","data":{"l":[1,2,3],"m":[[],[[]],{}],"o":{"p":{}}}}`,
	`{"code":"a","data":{"l":[1,]}}`,
	`{"code":"a","data":{"l":[,1]}}`,
	`{"code":"a","data":{"l":[1 2]}}`,
	`{"code":"a","data":{"k" 1}}`,
	`{"code":"a","data":{"k"::1}}`,
	`{"code":"a","data":{k:1}}`,
	`{"code":"a","data":{1:1}}`,
	`{"code":"a","data":{"k":1,,"j":2}}`,
	`{"code":"a","data":{"k":1 "j":2}}`,
	`{"code":"a","data":{"k":1]}`,
	`{"code":"a","data":[1}}`,
	`{"code":"a","data":{}]`,
	`{"code":"a"  ,  "data"  :  {  }  }`,
	`{,"code":"a","data":{}}`,
	`{"code":"a","data":{}`,
	`{"code":"a","data":`,
	`{"code":"a","data"`,
	`{"code":"a",`,
	`{"code"`,
	`{"`,
	`{`,
	`}`,
	`{}`,
	`[]`,
	`1`,
	`"x"`,
	`true`,
	// UTF-8 inside strings and outside them.
	"{\"code\":\"a\",\"data\":{\"customer_id\":\"\xc3\"}}",
	"{\"code\":\"a\",\"data\":{\"customer_id\":\"\xc3\xa9\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\xc0\xaf\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\xed\xa0\x80\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\xf0\x9f\x98\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\xf0\x9f\x98\x80\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\xf4\x90\x80\x80\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\xef\xbf\xbd\",\"\xef\xbf\xbd\":1}}",
	"{\"code\":\"a\",\"data\":{\"\xff\":1}}",
	"{\"code\":\"a\",\"data\":{}}\xff",
	"\xff{\"code\":\"a\",\"data\":{}}",
	"{\"code\":\"a\",\xc3\xa9\"data\":{}}",
	"{\"code\":\"a\",\"data\":{\"k\":\xc3\xa9}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\x1f\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\x7f\"}}",
	"{\"code\":\"a\",\"data\":{\"k\":\"\x00\"}}",
	// Byte order mark, white space and trailing data.
	"\xef\xbb\xbf{\"code\":\"a\",\"data\":{}}",
	"{\"code\":\"a\",\"data\":{}}\xef\xbb\xbf",
	" \t\r\n{ \t\r\n\"code\" \t\r\n: \t\r\n\"a\" \t\r\n, \t\r\n\"data\" \t\r\n: \t\r\n{ \t\r\n} \t\r\n} \t\r\n",
	"{\"code\":\"a\",\"data\":{\f}}",
	"{\"code\":\"a\",\"data\":{\v}}",
	"{\"code\":\"a\",\"data\":{\xc2\xa0}}",
	"{\"code\":\"a\",\"data\":{}}\x00",
	"{\"code\":\"a\",\"data\":{}} x",
	"{\"code\":\"a\",\"data\":{}}{}",
	"{\"code\":\"a\",\"data\":{}}}",
	"{\"code\":\"a\",\"data\":{}} 1",
	"{\"code\":\"a\",\"data\":{}} \"",
	// Pointer targets: arrays, top-level members, empty names, escapes.
	`{"code":"a","data":{"l":["t0","t1",{"id":"t2"}],"":{"":"empty"},"a/b":{"m~n":"esc"}}}`,
	`{"code":"a","data":{"customer_id":"t"},"tenant":7,"l":[[0,[1,[2]]]]}`,
	`{"code":"a","data":{"l":[0,1,2,3,4,5,6,7,8,9,10,11,12]}}`,
}

// referencePointers are the tenant pointers each of referenceSeeds is tried
// with.
var referencePointers = []string{
	"", "/data/customer_id", "/data/customer_i\u0064", "/data/é", "/data/\ufffd", "/data/😀",
	"/data/\ufffdA", "/data/\ufffd\ufffd", "/data/a~1b", "/data/a~1b/m~0n", "/data/", "/data//",
	"/data/l/0", "/data/l/2/id", "/data/l/12", "/data/l/-", "/data/l/00", "/data/l/1e0",
	"/data/l/ 1", "/data/l/99999999999999999999", "/code", "/tenant", "/l/0/1/1/0",
	"/data/x/0/k", "/data/k", "/data/\x00", "/data/\xff", "/", "//", "x", "/~2",
}

// deepBody returns a body whose data member holds n nested containers, each
// an object (with member "k") if obj, else an array; the top-level object and
// data add 2 to the depth.
func deepBody(n int, obj bool) string {
	if obj {
		return `{"code":"a","data":` + strings.Repeat(`{"k":`, n) + `1` + strings.Repeat(`}`, n) + `}`
	}
	return `{"code":"a","data":{"k":` + strings.Repeat(`[`, n) + `1` + strings.Repeat(`]`, n) + `}}`
}

// wideBody returns a body whose data object has n members "m0" to "m<n-1>"
// plus "customer_id", with the names at the indexes in dups repeated at the
// end and the names at the indexes in escaped written with a \u escape.
func wideBody(n int, dups, escaped []int) string {
	var b strings.Builder
	b.WriteString(`{"code":"a","data":{"customer_id":"t"`)
	name := func(i int) string {
		for _, e := range escaped {
			if e == i {
				return `\u006d` + strconv.Itoa(i)
			}
		}
		return "m" + strconv.Itoa(i)
	}
	for i := range n {
		b.WriteString(`,"` + name(i) + `":` + strconv.Itoa(i))
	}
	for _, d := range dups {
		b.WriteString(`,"m` + strconv.Itoa(d) + `":0`)
	}
	b.WriteString(`}}`)
	return b.String()
}

// parseErrors are the sentinels a Parse error may wrap.
var parseErrors = []error{
	ErrInvalidPointer, ErrMalformedJSON, ErrMissingCode, ErrInvalidCode,
	ErrMissingData, ErrMissingTenant, ErrInvalidTenant,
}

// sentinels returns which of parseErrors err wraps, as a bit set.
func sentinels(err error) (set int) {
	for i, e := range parseErrors {
		if errors.Is(err, e) {
			set |= 1 << i
		}
	}
	return set
}

func FuzzParseMatchesReference(f *testing.F) {
	for _, body := range parseSeeds {
		for _, p := range parsePointers {
			f.Add([]byte(body), p)
		}
	}
	for _, c := range parseCases() {
		f.Add([]byte(c.body), c.pointer())
	}
	for _, body := range referenceSeeds {
		for _, p := range referencePointers {
			f.Add([]byte(body), p)
		}
	}
	for _, n := range []int{MaxDepth - 3, MaxDepth - 2, MaxDepth - 1, MaxDepth} {
		f.Add([]byte(deepBody(n, true)), "/data/k/k/k")
		f.Add([]byte(deepBody(n, false)), "/data/k/0/0")
	}
	for _, n := range []int{maxListNames - 2, maxListNames - 1, maxListNames, maxListNames + 1, 3 * maxListNames} {
		f.Add([]byte(wideBody(n, nil, nil)), "/data/customer_id")
		f.Add([]byte(wideBody(n, []int{n - 1}, nil)), "/data/customer_id")
		f.Add([]byte(wideBody(n, []int{0}, []int{0, n - 1})), "/data/m"+strconv.Itoa(n-1))
		f.Add([]byte(wideBody(n, []int{n - 1}, []int{0, n - 1})), "/data/m0")
	}

	f.Fuzz(func(t *testing.T, body []byte, ptr string) {
		orig := bytes.Clone(body)
		got, err := Parse(body, ptr)
		if !bytes.Equal(body, orig) {
			t.Fatalf("Parse changed its input")
		}
		want, wantErr := parseReference(body, ptr)
		if sentinels(err) != sentinels(wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("Parse(%q, %q) error = %v, reference %v", body, ptr, err, wantErr)
		}
		if err != nil {
			if got != nil {
				t.Fatalf("Parse returned %+v and %v", got, err)
			}
			return
		}
		if got.Code != want.Code || got.Tenant != want.Tenant || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("Parse(%q, %q) = %+v, reference %+v", body, ptr, got, want)
		}
		// Data is a copy: changing the body must not change it.
		for i := range body {
			body[i] ^= 0xff
		}
		if !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("Data shares memory with the body")
		}
	})
}
