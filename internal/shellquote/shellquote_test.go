package shellquote

import (
	"os/exec"
	"strings"
	"testing"
)

func TestJoinRoundTripsThroughSh(t *testing.T) {
	words := []string{"plain", "", "two words", "it's", `$HOME`, "`id`", "a\nb", "*", "-n", `back\slash`, "ünï"}
	out, err := exec.Command("sh", "-c", `for w in `+Join(words)+`; do printf '%s\0' "$w"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != len(words) {
		t.Fatalf("sh saw %d words %q, want %d", len(got), got, len(words))
	}
	for i := range words {
		if got[i] != words[i] {
			t.Errorf("word %d: sh saw %q, want %q", i, got[i], words[i])
		}
	}
	if Quote("abc-1.2/x") != "abc-1.2/x" {
		t.Errorf("a plain word was quoted: %s", Quote("abc-1.2/x"))
	}
}
