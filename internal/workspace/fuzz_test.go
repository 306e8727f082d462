package workspace

import (
	"strings"
	"testing"
)

// FuzzParseGuestState: whatever a guest answers about its workspace,
// parsing never panics, and what it accepts is what the harvest relies
// on: a tip that is an object id or none, counts in range or unknown.
func FuzzParseGuestState(f *testing.F) {
	id := strings.Repeat("ab", 20)
	f.Add([]byte("head refs/heads/banger/dev\ntip " + id + "\ndirty 3\nunsaved 1\nstray 0\n"))
	f.Add([]byte("head detached\ntip missing\ndirty unknown\nunsaved unknown\nstray unknown\n"))
	f.Add([]byte("head x\ntip ../../etc\ndirty -1\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		st, err := parseGuestState(out, 40)
		if err != nil {
			return
		}
		if st.tip != "" && (len(st.tip) != 40 || !isHex(st.tip)) {
			t.Errorf("accepted tip %q", st.tip)
		}
		for _, n := range []int{st.dirty, st.unsaved, st.stray} {
			if n < unknown || n > 1<<30 {
				t.Errorf("accepted count %d", n)
			}
		}
		if strings.ContainsAny(st.head, "\n\x00\x1b") {
			t.Errorf("accepted head %q", st.head)
		}
	})
}
