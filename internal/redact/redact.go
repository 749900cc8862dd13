// Package redact shows URLs without what often carries credentials, for
// errors and logs.
package redact

import "net/url"

// URL keeps scheme, host and path: query strings and user info often carry
// tokens.
func URL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// URLString is URL for a URL not yet parsed; one that does not parse is not
// shown at all.
func URLString(s string) string {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return ""
	case err != nil:
		return "[invalid url]"
	}
	return URL(u)
}
