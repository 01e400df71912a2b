package auth

import (
	"strings"
	"unicode/utf8"
)

// saslPrep prepares a password for SCRAM key derivation. It is a subset of
// RFC 4013 SASLprep chosen to agree with Postgres (src/common/saslprep.c,
// used by both the server and libpq) wherever agreement is possible without
// Unicode normalization tables, which the standard library lacks:
//
//   - Pure ASCII is used as-is. Postgres has the same fast path, so for ASCII
//     passwords (even with control characters) we match exactly.
//   - Invalid UTF-8 is used as-is. Postgres also falls back to the raw bytes
//     when SASLprep fails, and this is one of its failures.
//   - Otherwise we apply the RFC 3454 mapping step (non-ASCII spaces, table
//     C.1.2, become U+0020; "commonly mapped to nothing" characters, table
//     B.1, are dropped) and then, like Postgres, use the raw password instead
//     if the mapped string is empty or holds a prohibited character (tables
//     C.2 to C.9).
//
// What we skip: NFKC normalization, the unassigned-code-point check and the
// bidirectional-text check. A non-ASCII password that NFKC would change
// (compatibility forms such as "ﬁ" or fullwidth letters, decomposed accents,
// superscripts), or one with both a mapped character and an unassigned or
// RTL-violating one, derives different keys here than in Postgres, and
// authentication fails. Where that matters on the server side, configure the
// Postgres-made SCRAM secret instead of the plaintext password.
func saslPrep(password string) string {
	ascii := true
	for i := 0; i < len(password); i++ {
		if password[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii || !utf8.ValidString(password) {
		return password
	}
	var b strings.Builder
	b.Grow(len(password))
	for _, r := range password {
		switch {
		// Postgres tests spaces first, so U+200B, listed in both tables,
		// becomes a space.
		case inRanges(r, nonASCIISpace):
			b.WriteByte(' ')
		case inRanges(r, mappedToNothing):
		default:
			if prohibited(r) {
				return password
			}
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return password
	}
	return b.String()
}

type runeRange struct{ lo, hi rune }

func inRanges(r rune, table []runeRange) bool {
	for _, rr := range table {
		if r >= rr.lo && r <= rr.hi {
			return true
		}
	}
	return false
}

// RFC 3454 table C.1.2.
var nonASCIISpace = []runeRange{
	{0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200B},
	{0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
}

// RFC 3454 table B.1.
var mappedToNothing = []runeRange{
	{0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x1806, 0x1806}, {0x180B, 0x180D},
	{0x200B, 0x200D}, {0x2060, 0x2060}, {0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF},
}

// RFC 3454 tables C.2.1, C.2.2, C.3, C.5, C.6, C.7, C.8 and C.9, which
// RFC 4013 prohibits in output (C.1.2 is already mapped away; C.4 is below).
var prohibitedRanges = []runeRange{
	{0x0000, 0x001F}, {0x007F, 0x009F}, // C.2.1, C.2.2 controls
	{0x0340, 0x0341},                                     // C.8
	{0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x180E, 0x180E}, // C.2.2
	{0x200C, 0x200F},                   // C.2.2, C.8
	{0x2028, 0x2029},                   // C.2.2
	{0x202A, 0x202E},                   // C.8
	{0x2060, 0x2063}, {0x206A, 0x206F}, // C.2.2, C.8
	{0x2FF0, 0x2FFB},                       // C.7
	{0xD800, 0xDFFF},                       // C.5 (cannot occur in valid UTF-8; kept for completeness)
	{0xE000, 0xF8FF},                       // C.3
	{0xFEFF, 0xFEFF},                       // C.2.2
	{0xFFF9, 0xFFFD},                       // C.2.2, C.6
	{0x1D173, 0x1D17A},                     // C.2.2
	{0xE0001, 0xE0001}, {0xE0020, 0xE007F}, // C.9
	{0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD}, // C.3
}

func prohibited(r rune) bool {
	// C.4: non-characters, U+FDD0..U+FDEF and the last two of every plane.
	if r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE {
		return true
	}
	return inRanges(r, prohibitedRanges)
}
