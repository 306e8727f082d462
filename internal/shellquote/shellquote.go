// Package shellquote makes words safe for a POSIX shell: how banger
// passes commands and paths to a guest's shell over SSH, where the
// remote side joins everything into one string for `sh -c`.
package shellquote

import "strings"

// Quote makes s one word for a POSIX shell: as it is when it holds
// nothing the shell treats specially, else in single quotes.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each word and joins them with spaces: a command line that
// the shell splits back into exactly these words.
func Join(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = Quote(w)
	}
	return strings.Join(quoted, " ")
}
