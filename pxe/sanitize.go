package pxe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxText bounds any text a client sent (a report line, a file name, a
// URL path) that the server keeps or logs.
const maxText = 512

// clean makes text that came from the network safe for a terminal, a log
// line and the status table, and bounds it: control characters (C0, DEL,
// C1, so ESC sequences and bells), format characters (bidirectional
// overrides, zero-width characters), line separators and bytes that are
// not UTF-8 become visible escapes (\x1b, \u202e, \xff); text longer than
// max bytes is cut at a character boundary and ends in "…".
//
// Every string a client controls goes through clean where it enters the
// server: the status table, /api/status and log lines then never see it
// raw.
func clean(s string, max int) string {
	if max <= 0 {
		max = maxText
	}
	safe := len(s) <= max
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && n <= 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case unsafeRune(r) && r < 0x100:
			piece = fmt.Sprintf(`\x%02x`, r)
		case unsafeRune(r):
			piece = fmt.Sprintf(`\u%04x`, r)
		default:
			piece = s[i : i+n]
		}
		if b.Len()+len(piece) > max {
			b.WriteString("…")
			break
		}
		b.WriteString(piece)
		i += n
	}
	return b.String()
}

// unsafeRune says whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
}
