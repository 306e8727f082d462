package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"banger/internal/errdefs"
)

// TestLog: base..tip newest first, cut at max with truncated saying
// so, and nothing of base's own history.
func TestLog(t *testing.T) {
	w := bundleNewWorld(t)
	var want []Commit
	for i := 1; i <= 5; i++ {
		c := bundleCommit(t, w.guest, "guest.txt", fmt.Sprintf("g%d\n", i), fmt.Sprintf("guest %d", i))
		want = append([]Commit{{c, fmt.Sprintf("guest %d", i)}}, want...)
	}
	if _, err := Import(context.Background(), w.repo, w.request(w.bundleBranch(t))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		max       int
		want      []Commit
		truncated bool
	}{
		{10, want, false},
		{5, want, false},
		{3, want[:3], true},
		{1, want[:1], true},
	} {
		got, truncated, err := Log(context.Background(), w.repo, w.base, "banger/vm1", c.max)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) || truncated != c.truncated {
			t.Errorf("Log max %d: %v, %v; want %v, %v", c.max, got, truncated, c.want, c.truncated)
		}
	}
	if got, truncated, err := Log(context.Background(), w.repo, w.base, w.base, 10); err != nil || len(got) != 0 || truncated {
		t.Errorf("Log base..base: %v, %v, %v; want nothing", got, truncated, err)
	}
}

// TestLogBadArguments: what is not a revision, or a max out of range,
// is the caller's mistake; a revision the repository lacks is an error.
func TestLogBadArguments(t *testing.T) {
	w := bundleNewWorld(t)
	for _, c := range []struct {
		base, tip string
		max       int
	}{
		{"", "main", 1}, {"main", "", 1}, {"--output=/tmp/x", "main", 1}, {"main", "-p", 1},
		{"main..feature", "main", 1}, {"main", "main", 0}, {"main", "main", -1}, {"main", "main", impLogMax + 1},
	} {
		if _, _, err := Log(context.Background(), w.repo, c.base, c.tip, c.max); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Log(%q, %q, %d): %v; want an invalid argument", c.base, c.tip, c.max, err)
		}
	}
	if _, _, err := Log(context.Background(), w.repo, w.base, "no-such-branch", 1); err == nil {
		t.Error("Log of a missing branch succeeded")
	}
}

// TestLogSubjects: a guest's subject reaches the caller without
// control characters or bidirectional overrides, and cut short.
func TestLogSubjects(t *testing.T) {
	w := bundleNewWorld(t)
	bundleCommit(t, w.guest, "guest.txt", "g1\n", "red \x1b[31malert\x07 \u202eevil")
	bundleCommit(t, w.guest, "guest.txt", "g2\n", strings.Repeat("long ", 2000))
	if _, err := Import(context.Background(), w.repo, w.request(w.bundleBranch(t))); err != nil {
		t.Fatal(err)
	}
	got, _, err := Log(context.Background(), w.repo, w.base, "banger/vm1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Log: %v", got)
	}
	if s := got[0].Subject; utf8.RuneCountInString(s) > impSubjectColumns || !strings.HasPrefix(s, "long long") {
		t.Errorf("long subject kept %d runes: %.40q...", utf8.RuneCountInString(s), s)
	}
	if s := got[1].Subject; s != "red \uFFFD[31malert\uFFFD \uFFFDevil" {
		t.Errorf("subject %q; want its control characters replaced", s)
	}
}

// TestImpParseLog: git log's output is read strictly.
func TestImpParseLog(t *testing.T) {
	id := strings.Repeat("ab", 20)
	if got, err := impParseLog(id + "\x00one\n" + id + "\x00\n"); err != nil || len(got) != 2 || got[0].Subject != "one" || got[1].Subject != "" {
		t.Errorf("parse: %v, %v", got, err)
	}
	for _, bad := range []string{"nonsense\n", id + " one\n", id[:39] + "\x00one\n", strings.ToUpper(id) + "\x00one\n"} {
		if _, err := impParseLog(bad); err == nil {
			t.Errorf("parse %q succeeded", bad)
		}
	}
	if s := impCleanSubject("ok \xff\xfe  "); s != "ok \uFFFD" {
		t.Errorf("clean subject %q", s)
	}
}
