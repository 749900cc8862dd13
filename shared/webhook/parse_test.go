package webhook

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// evil marks attacker-chosen text in bodies; no error message may contain it.
const evil = "EVILvalue"

// parseCase is a body and tenant pointer with the outcome Parse must give.
type parseCase struct {
	name    string
	body    string
	ptr     string // "/data/customer_id" if empty; "-" for the empty pointer
	code    string
	tenant  string
	data    string // compared exactly; unchecked if empty
	wantErr error
}

// pointer returns the tenant pointer of c.
func (c parseCase) pointer() string {
	switch c.ptr {
	case "":
		return "/data/customer_id"
	case "-":
		return ""
	}
	return c.ptr
}

// parseCases are the cases of TestParse, and seeds for FuzzParseMatchesReference.
func parseCases() []parseCase {
	deep := `{"code":"a","data":{"x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}}`
	okDeep := `{"code":"a","data":{"x":` + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + `}}`
	long := strings.Repeat("x", 129)

	return []parseCase{
		// Accepted bodies.
		{name: "string tenant", body: `{"code":"order.created","data":{"customer_id":"c_42"}}`,
			code: "order.created", tenant: "c_42", data: `{"customer_id":"c_42"}`},
		{name: "white space and extra members", body: " \n{\"id\": 7, \"code\" : \"a:b\", \"data\": {\"customer_id\": \"t\"}, \"x\": [1,{}]}\r\n\t",
			code: "a:b", tenant: "t"},
		{name: "data as received", body: `{"code":"a","data":{ "customer_id" : "t", "n": 1.50 }}`,
			code: "a", tenant: "t", data: `{ "customer_id" : "t", "n": 1.50 }`},
		{name: "integer tenant", body: `{"code":"a","data":{"customer_id":42}}`, code: "a", tenant: "42"},
		{name: "negative tenant", body: `{"code":"a","data":{"customer_id":-7}}`, code: "a", tenant: "-7"},
		{name: "zero tenant", body: `{"code":"a","data":{"customer_id":0}}`, code: "a", tenant: "0"},
		{name: "minus zero tenant", body: `{"code":"a","data":{"customer_id":-0.0e5}}`, code: "a", tenant: "0"},
		{name: "exponent tenant", body: `{"code":"a","data":{"customer_id":1E3}}`, code: "a", tenant: "1000"},
		{name: "fraction zero tenant", body: `{"code":"a","data":{"customer_id":1000.000}}`, code: "a", tenant: "1000"},
		{name: "fraction and exponent tenant", body: `{"code":"a","data":{"customer_id":0.0125e+4}}`, code: "a", tenant: "125"},
		{name: "negative exponent tenant", body: `{"code":"a","data":{"customer_id":12500e-2}}`, code: "a", tenant: "125"},
		{name: "huge integer tenant stays exact", body: `{"code":"a","data":{"customer_id":123456789012345678901234567890}}`,
			code: "a", tenant: "123456789012345678901234567890"},
		{name: "128 digit tenant", body: `{"code":"a","data":{"customer_id":1e127}}`, code: "a", tenant: "1" + strings.Repeat("0", 127)},
		{name: "zero with huge exponent", body: `{"code":"a","data":{"customer_id":0e999999999999}}`, code: "a", tenant: "0"},
		{name: "huge numbers elsewhere", body: `{"code":"a","n":1e999999,"data":{"customer_id":"t","m":-1e-999999}}`, code: "a", tenant: "t"},
		{name: "escaped tenant string", body: `{"code":"a","data":{"customer_id":"\u0041B\/C"}}`, code: "a", tenant: "AB/C"},
		{name: "escaped member name", body: `{"\u0063ode":"a","data":{"customer_\u0069d":"t"}}`, code: "a", tenant: "t"},
		{name: "code with colon and punctuation", body: `{"code":"shop:order/paid!~","data":{"customer_id":"t"}}`,
			code: "shop:order/paid!~", tenant: "t"},
		{name: "128 byte code and tenant", body: `{"code":"` + long[:128] + `","data":{"customer_id":"` + long[:128] + `"}}`,
			code: long[:128], tenant: long[:128]},
		{name: "nested pointer", ptr: "/data/customer/ids/0", body: `{"code":"a","data":{"customer":{"ids":["t0","t1"]}}}`,
			code: "a", tenant: "t0"},
		{name: "array index", ptr: "/data/items/2/id", body: `{"code":"a","data":{"items":[{},{},{"id":9}]}}`, code: "a", tenant: "9"},
		{name: "escape ~1", ptr: "/data/a~1b", body: `{"code":"a","data":{"a/b":"slash","a~1b":"no"}}`, code: "a", tenant: "slash"},
		{name: "escape ~0", ptr: "/data/m~0n", body: `{"code":"a","data":{"m~n":"tilde"}}`, code: "a", tenant: "tilde"},
		{name: "escape ~01 is ~1", ptr: "/data/~01", body: `{"code":"a","data":{"~1":"right","/":"wrong"}}`, code: "a", tenant: "right"},
		{name: "empty member name", ptr: "/data/", body: `{"code":"a","data":{"":"e"}}`, code: "a", tenant: "e"},
		{name: "pointer to top level", ptr: "/tenant", body: `{"tenant":"top","code":"a","data":{}}`, code: "a", tenant: "top"},
		{name: "pointer to code", ptr: "/code", body: `{"code":"a","data":{}}`, code: "a", tenant: "a"},
		{name: "member names match exactly", ptr: "/data/ID", body: `{"Code":"x","CODE":"y","code":"a","data":{"id":"lower","ID":"upper"}}`,
			code: "a", tenant: "upper"},
		{name: "no tenant pointer", ptr: "-", body: `{"code":"a","data":{}}`, code: "a", tenant: ""},
		{name: "same name in sibling objects", body: `{"code":"a","data":{"customer_id":"t","x":{"k":1},"y":{"k":2},"z":[{"k":1},{"k":2}]}}`,
			code: "a", tenant: "t"},
		{name: "same name at different depths", body: `{"code":"a","data":{"code":"inner","data":{"code":1},"customer_id":"t"}}`,
			code: "a", tenant: "t"},
		{name: "deep nesting within limit", ptr: "-", body: okDeep, code: "a"},

		// Malformed bodies.
		{name: "empty body", body: ``, wantErr: ErrMalformedJSON},
		{name: "only space", body: " \n", wantErr: ErrMalformedJSON},
		{name: "null", body: `null`, wantErr: ErrMalformedJSON},
		{name: "array", body: `[{"code":"a","data":{}}]`, wantErr: ErrMalformedJSON},
		{name: "string", body: `"EVILvalue"`, wantErr: ErrMalformedJSON},
		{name: "unterminated", body: `{"code":"EVILvalue","data":{}`, wantErr: ErrMalformedJSON},
		{name: "bad literal", body: `{"code":"a","data":{"k":EVILvalue}}`, wantErr: ErrMalformedJSON},
		{name: "trailing comma", body: `{"code":"a","data":{},}`, wantErr: ErrMalformedJSON},
		{name: "trailing garbage", body: `{"code":"a","data":{}} EVILvalue`, wantErr: ErrMalformedJSON},
		{name: "second object", body: `{"code":"a","data":{}}{"code":"b","data":{}}`, wantErr: ErrMalformedJSON},
		{name: "single quotes", body: `{'code':'a','data':{}}`, wantErr: ErrMalformedJSON},
		{name: "bad escape", body: `{"code":"\x","data":{}}`, wantErr: ErrMalformedJSON},
		{name: "control character in string", body: "{\"code\":\"a\tb\",\"data\":{}}", wantErr: ErrMalformedJSON},
		{name: "invalid UTF-8", body: "{\"code\":\"a\",\"data\":{\"k\":\"\xff\xfe\"}}", wantErr: ErrMalformedJSON},
		{name: "leading zero number", body: `{"code":"a","data":{"k":01}}`, wantErr: ErrMalformedJSON},
		{name: "too deep", body: deep, wantErr: ErrMalformedJSON},
		{name: "duplicate code", body: `{"code":"a","data":{},"code":"EVILvalue"}`, wantErr: ErrMalformedJSON},
		{name: "duplicate data", body: `{"code":"a","data":{"customer_id":"t"},"data":{"customer_id":"EVILvalue"}}`, wantErr: ErrMalformedJSON},
		{name: "duplicate by escape", body: `{"code":"a","\u0063ode":"EVILvalue","data":{}}`, wantErr: ErrMalformedJSON},
		{name: "duplicate tenant", body: `{"code":"a","data":{"customer_id":"t","customer_id":"EVILvalue"}}`, wantErr: ErrMalformedJSON},
		{name: "duplicate deep in array", body: `{"code":"a","data":{"customer_id":"t","l":[1,{"EVILvalue":1,"EVILvalue":2}]}}`, wantErr: ErrMalformedJSON},

		// Code.
		{name: "no code", body: `{"data":{"customer_id":"t"}}`, wantErr: ErrMissingCode},
		{name: "null code", body: `{"code":null,"data":{"customer_id":"t"}}`, wantErr: ErrMissingCode},
		{name: "empty code", body: `{"code":"","data":{"customer_id":"t"}}`, wantErr: ErrMissingCode},
		{name: "code of other case only", body: `{"Code":"a","data":{"customer_id":"t"}}`, wantErr: ErrMissingCode},
		{name: "number code", body: `{"code":12,"data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "object code", body: `{"code":{"EVILvalue":1},"data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "array code", body: `{"code":["EVILvalue"],"data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "bool code", body: `{"code":true,"data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "code with space", body: `{"code":"EVILvalue x","data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "code with brace", body: `{"code":"EVILvalue{x}","data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "code with escaped newline", body: `{"code":"EVILvalue\n","data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "code with escaped NUL", body: `{"code":"EVILvalue\u0000","data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "code not ASCII", body: `{"code":"EVILvalueé","data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},
		{name: "code too long", body: `{"code":"EVILvalue` + long + `","data":{"customer_id":"t"}}`, wantErr: ErrInvalidCode},

		// Data.
		{name: "no data", body: `{"code":"a"}`, wantErr: ErrMissingData},
		{name: "null data", body: `{"code":"a","data":null}`, wantErr: ErrMissingData},
		{name: "array data", body: `{"code":"a","data":[{"customer_id":"t"}]}`, wantErr: ErrMissingData},
		{name: "string data", body: `{"code":"a","data":"EVILvalue"}`, wantErr: ErrMissingData},
		{name: "number data", body: `{"code":"a","data":1}`, wantErr: ErrMissingData},
		{name: "bool data", body: `{"code":"a","data":false}`, wantErr: ErrMissingData},

		// Tenant.
		{name: "no tenant member", body: `{"code":"a","data":{"other":"EVILvalue"}}`, wantErr: ErrMissingTenant},
		{name: "null tenant", body: `{"code":"a","data":{"customer_id":null}}`, wantErr: ErrMissingTenant},
		{name: "empty tenant", body: `{"code":"a","data":{"customer_id":""}}`, wantErr: ErrMissingTenant},
		{name: "pointer through a string", ptr: "/data/customer_id/0", body: `{"code":"a","data":{"customer_id":"EVILvalue"}}`, wantErr: ErrMissingTenant},
		{name: "index out of range", ptr: "/data/l/2", body: `{"code":"a","data":{"l":["x","y"]}}`, wantErr: ErrMissingTenant},
		{name: "index with leading zero", ptr: "/data/l/01", body: `{"code":"a","data":{"l":["x","y"]}}`, wantErr: ErrMissingTenant},
		{name: "index past the end", ptr: "/data/l/-", body: `{"code":"a","data":{"l":["x","y"]}}`, wantErr: ErrMissingTenant},
		{name: "negative index", ptr: "/data/l/-1", body: `{"code":"a","data":{"l":["x","y"]}}`, wantErr: ErrMissingTenant},
		{name: "name as index", ptr: "/data/l/x", body: `{"code":"a","data":{"l":["x","y"]}}`, wantErr: ErrMissingTenant},
		{name: "huge index", ptr: "/data/l/99999999999999999999999", body: `{"code":"a","data":{"l":["x"]}}`, wantErr: ErrMissingTenant},
		{name: "unescaped tilde name", ptr: "/data/a~1b", body: `{"code":"a","data":{"a~1b":"EVILvalue"}}`, wantErr: ErrMissingTenant},
		{name: "bool tenant", body: `{"code":"a","data":{"customer_id":true}}`, wantErr: ErrInvalidTenant},
		{name: "object tenant", body: `{"code":"a","data":{"customer_id":{"id":"EVILvalue"}}}`, wantErr: ErrInvalidTenant},
		{name: "array tenant", body: `{"code":"a","data":{"customer_id":["EVILvalue"]}}`, wantErr: ErrInvalidTenant},
		{name: "fractional tenant", body: `{"code":"a","data":{"customer_id":1.5}}`, wantErr: ErrInvalidTenant},
		{name: "small fractional tenant", body: `{"code":"a","data":{"customer_id":5e-1}}`, wantErr: ErrInvalidTenant},
		{name: "tiny tenant", body: `{"code":"a","data":{"customer_id":1e-999999999}}`, wantErr: ErrInvalidTenant},
		{name: "enormous tenant", body: `{"code":"a","data":{"customer_id":1e999999999}}`, wantErr: ErrInvalidTenant},
		{name: "129 digit tenant", body: `{"code":"a","data":{"customer_id":1e128}}`, wantErr: ErrInvalidTenant},
		{name: "129 byte negative tenant", body: `{"code":"a","data":{"customer_id":-1e127}}`, wantErr: ErrInvalidTenant},
		{name: "tenant with colon", body: `{"code":"a","data":{"customer_id":"EVILvalue:1"}}`, wantErr: ErrInvalidTenant},
		{name: "tenant with brace", body: `{"code":"a","data":{"customer_id":"{EVILvalue}"}}`, wantErr: ErrInvalidTenant},
		{name: "tenant with space", body: `{"code":"a","data":{"customer_id":"EVILvalue 1"}}`, wantErr: ErrInvalidTenant},
		{name: "tenant with DEL", body: `{"code":"a","data":{"customer_id":"EVILvalue\u007f"}}`, wantErr: ErrInvalidTenant},
		{name: "tenant not ASCII", body: `{"code":"a","data":{"customer_id":"EVILvalueü"}}`, wantErr: ErrInvalidTenant},
		{name: "tenant too long", body: `{"code":"a","data":{"customer_id":"EVILvalue` + long + `"}}`, wantErr: ErrInvalidTenant},

		// Order of checks: the first failing part is reported.
		{name: "bad code before bad data", body: `{"code":1,"data":1}`, wantErr: ErrInvalidCode},
		{name: "bad data before missing tenant", body: `{"code":"a","data":[]}`, wantErr: ErrMissingData},

		// Bad pointers are configuration errors.
		{name: "pointer without slash", ptr: "data/customer_id", body: `{"code":"a","data":{}}`, wantErr: ErrInvalidPointer},
		{name: "pointer with bad escape", ptr: "/data/a~2", body: `{"code":"a","data":{}}`, wantErr: ErrInvalidPointer},
	}
}

func TestParse(t *testing.T) {
	for _, tt := range parseCases() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body), tt.pointer())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("Parse returned %+v with its error", got)
				}
				if strings.Contains(err.Error(), evil) {
					t.Errorf("error %q echoes the body", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse error = %v", err)
			}
			if got.Code != tt.code || got.Tenant != tt.tenant {
				t.Errorf("Parse = code %q tenant %q, want %q %q", got.Code, got.Tenant, tt.code, tt.tenant)
			}
			if tt.data != "" && string(got.Data) != tt.data {
				t.Errorf("Data = %s, want %s", got.Data, tt.data)
			}
			if !json.Valid(got.Data) || got.Data[0] != '{' {
				t.Errorf("Data = %s, not an object", got.Data)
			}
		})
	}
}

func TestParseDataIsACopy(t *testing.T) {
	body := []byte(`{"code":"a","data":{"k":"v"}}`)
	p, err := Parse(body, "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for i := range body {
		body[i] = ' '
	}
	if string(p.Data) != `{"k":"v"}` {
		t.Fatalf("Data changed with the body: %s", p.Data)
	}
}

func TestValidatePointer(t *testing.T) {
	for _, p := range []string{"", "/", "/data", "/data/customer_id", "/a~0b/~1/0", "//", "/~01"} {
		if err := ValidatePointer(p); err != nil {
			t.Errorf("ValidatePointer(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"data", " /data", "#/data", "/a~", "/a~2", "/~/x", "/a/~a"} {
		if err := ValidatePointer(p); !errors.Is(err, ErrInvalidPointer) {
			t.Errorf("ValidatePointer(%q) = %v, want ErrInvalidPointer", p, err)
		}
	}
}

func TestResolve(t *testing.T) {
	doc := []byte(` {"a":{"b/c":[10,{"~":" x "}],"":{"":0}},"n":null} `)
	tests := []struct {
		ptr, want string
		ok        bool
	}{
		{"", `{"a":{"b/c":[10,{"~":" x "}],"":{"":0}},"n":null}`, true},
		{"/a/b~1c/0", `10`, true},
		{"/a/b~1c/1/~0", `" x "`, true},
		{"/a//", `0`, true},
		{"/n", `null`, true},
		{"/n/0", ``, false},
		{"/a/b~1c/2", ``, false},
		{"/a/b~1c/00", ``, false},
		{"/a/b~1c/+1", ``, false},
		{"/a/b~1c/ 1", ``, false},
		{"/missing", ``, false},
		{"/a/b~1c/0/x", ``, false},
	}
	for _, tt := range tests {
		toks, err := parsePointer(tt.ptr)
		if err != nil {
			t.Fatalf("parsePointer(%q): %v", tt.ptr, err)
		}
		got, ok := resolve(doc, toks)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("resolve(%q) = %s, %v; want %s, %v", tt.ptr, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCanonicalInt(t *testing.T) {
	tests := []struct {
		num, want string
		ok        bool
	}{
		{"0", "0", true}, {"-0", "0", true}, {"0.000", "0", true}, {"0e-5", "0", true},
		{"7", "7", true}, {"-7", "-7", true}, {"10", "10", true}, {"100e-2", "1", true},
		{"1.5e1", "15", true}, {"1.25E+2", "125", true}, {"1e+0005", "100000", true}, {"2e-0", "2", true},
		{"0.1", "", false}, {"1.01", "", false}, {"15e-1", "", false}, {"1e-1", "", false},
		{"1e1000000", "", false}, {"-1e-1000000", "", false},
		{"123456789", "123456789", true},
	}
	for _, tt := range tests {
		got, ok := canonicalInt(tt.num, 128)
		if got != tt.want || ok != tt.ok {
			t.Errorf("canonicalInt(%q) = %q, %v; want %q, %v", tt.num, got, ok, tt.want, tt.ok)
		}
	}
	if got, ok := canonicalInt("-1e3", 5); !ok || got != "-1000" {
		t.Errorf("canonicalInt(-1e3, 5) = %q, %v", got, ok)
	}
	if _, ok := canonicalInt("-1e3", 4); ok {
		t.Errorf("canonicalInt(-1e3, 4) fits, want too long")
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("other"), ""},
		{ErrInvalidPointer, ""},
		{ErrInvalidSecret, ""},
		{ErrMalformedJSON, "malformed_json"},
		{ErrMissingCode, "missing_code"},
		{ErrInvalidCode, "invalid_code"},
		{ErrMissingData, "missing_data"},
		{ErrMissingTenant, "missing_tenant"},
		{ErrInvalidTenant, "invalid_tenant"},
		{ErrSignatureMissing, "signature_missing"},
		{ErrSignatureInvalid, "signature_invalid"},
		{ErrTimestampInvalid, "timestamp_invalid"},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if tt.err == nil {
			continue
		}
		wrapped := errors.Join(errors.New("context"), tt.err)
		if got := ErrorCode(wrapped); got != tt.want {
			t.Errorf("ErrorCode(wrapped %v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if _, err := Parse([]byte(`{"code":"a","data":{"x":"a:b"}}`), "/data/x"); ErrorCode(err) != "invalid_tenant" {
		t.Errorf("ErrorCode(Parse error %v) = %q", err, ErrorCode(err))
	}
}

func TestParseWideObject(t *testing.T) {
	const n = 100_000
	tests := []struct {
		name    string
		body    string
		wantErr error
	}{
		{"distinct names", wideBody(n, nil, nil), nil},
		{"distinct escaped names", wideBody(n, nil, []int{0, 5, maxListNames, n / 2, n - 1}), nil},
		{"duplicate of the first name at the end", wideBody(n, []int{0}, nil), ErrMalformedJSON},
		{"duplicate of the last name at the end", wideBody(n, []int{n - 1}, nil), ErrMalformedJSON},
		{"duplicate of an escaped name", wideBody(n, []int{n / 2}, []int{n / 2}), ErrMalformedJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.body), "/data/m99999")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && p.Tenant != "99999" {
				t.Errorf("Tenant = %q, want 99999", p.Tenant)
			}
		})
	}
}
