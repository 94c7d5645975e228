// Package logfield bounds what a request can put into the driver's logs: a
// hostile caller controls volume IDs, paths and attribute values, and the
// driver logs them. Every request-supplied string goes through String, which
// keeps at most MaxLen bytes and escapes control characters and invalid
// UTF-8, so a 4 MB field costs a log line of a few hundred bytes and cannot
// forge or split log lines.
package logfield

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"
)

// MaxLen is the most bytes of a value that are logged.
const MaxLen = 256

// String returns a zap field holding Bound(v).
func String(key, v string) zap.Field { return zap.String(key, Bound(v)) }

// Bound returns v with control characters and invalid UTF-8 escaped (\n,
// \x1b, ...), cut to MaxLen bytes of the original with the full length
// noted. Printable values up to MaxLen bytes are returned as they are,
// without allocating.
func Bound(v string) string {
	if len(v) <= MaxLen && clean(v) {
		return v
	}
	s := v
	if len(s) > MaxLen {
		s = s[:MaxLen]
	}
	var b strings.Builder
	b.Grow(len(s) + 32)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			if i+utf8.UTFMax > len(s) && len(v) > MaxLen {
				// A rune cut by the bound: drop it.
				i = len(s)
				continue
			}
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	if len(v) > MaxLen {
		b.WriteString("...(")
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteString(" bytes)")
	}
	return b.String()
}

// clean reports whether v holds only printable ASCII other than '\\', or
// valid UTF-8 without control characters.
func clean(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			if c < 0x80 {
				return false
			}
			return cleanUTF8(v[i:])
		}
	}
	return true
}

func cleanUTF8(v string) bool {
	for _, r := range v {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}
