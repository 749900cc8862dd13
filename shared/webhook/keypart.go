package webhook

import "strings"

// Limits on the parts of a webhook that become part of a Redis key name: its
// tenant, its event code and its id. This package owns them: Parse, ingest,
// the engine and the configuration all check with the functions below, so
// every layer accepts the same names.
const (
	// MaxCodeLen is the longest event code accepted, in bytes.
	MaxCodeLen = 128
	// MaxTenantLen is the longest tenant accepted, in bytes.
	MaxTenantLen = 128
	// MaxIDLen is the longest webhook id accepted, in bytes.
	MaxIDLen = 128
)

// Characters that may not appear in a key part besides space and what is not
// printable ASCII: '{' and '}' delimit the Redis Cluster hash tag, and ':'
// separates the tenant from the code in a key ("<tenant>:<code>"), so a code,
// the key's last part, may hold one.
const (
	codeForbidden   = "{}"
	tenantForbidden = ":{}"
	idForbidden     = ":{}"
)

// ValidateCode returns nil if code may be an event code: 1 to MaxCodeLen
// bytes of printable ASCII without space, '{' and '}'. Otherwise it returns
// ErrInvalidCode, which never quotes code.
func ValidateCode(code string) error {
	if !validToken(code, MaxCodeLen, codeForbidden) {
		return ErrInvalidCode
	}
	return nil
}

// ValidateTenant returns nil if tenant may be a tenant: 1 to MaxTenantLen
// bytes of printable ASCII without space, ':', '{' and '}'. Otherwise it
// returns ErrInvalidTenant, which never quotes tenant.
func ValidateTenant(tenant string) error {
	if !validToken(tenant, MaxTenantLen, tenantForbidden) {
		return ErrInvalidTenant
	}
	return nil
}

// ValidateID returns nil if id may be a webhook id: 1 to MaxIDLen bytes of
// printable ASCII without space, ':', '{' and '}'. Otherwise it returns
// ErrInvalidID, which never quotes id.
func ValidateID(id string) error {
	if !validToken(id, MaxIDLen, idForbidden) {
		return ErrInvalidID
	}
	return nil
}

// validToken reports whether s is 1 to max bytes of printable ASCII
// (0x21 to 0x7e) none of which is in forbidden.
func validToken(s string, max int, forbidden string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || strings.IndexByte(forbidden, s[i]) >= 0 {
			return false
		}
	}
	return true
}
