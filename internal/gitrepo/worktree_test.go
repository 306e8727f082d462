package gitrepo

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/model"
)

// TestMarkPreparedTouchesNothingOfTheHost: a full copy, then the guest
// repository's fingerprint with an untracked file whose content the
// host has (git "freshens" such an object by touching its file): the
// host's object files keep their times, so its gc sees what it saw.
func TestMarkPreparedTouchesNothingOfTheHost(t *testing.T) {
	fixtureIsolate(t)
	repo := newFixtureSmall(t)
	fixtureGit(t, repo.Root, "gc", "-q")
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	objects := filepath.Join(repo.Root, ".git", "objects")
	times := map[string]time.Time{}
	filepath.WalkDir(objects, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chtimes(p, old, old)
			times[p] = old
		}
		return nil
	})
	fixtureWrite(t, filepath.Join(repo.Root, "copy.txt"), "one\n") // f.txt's content, untracked
	dest := filepath.Join(t.TempDir(), "guest")
	if _, err := Build(t.Context(), repo, BuildOptions{Mode: model.WorkspacePrepareModeFullCopy, Branch: "banger/vm1", Dest: dest}); err != nil {
		t.Fatal(err)
	}
	tree, err := MarkPrepared(t.Context(), dest)
	if err != nil || len(tree) != 40 {
		t.Fatalf("MarkPrepared: %q, %v", tree, err)
	}
	for p, want := range times {
		fi, err := os.Stat(p)
		if err != nil || !fi.ModTime().Equal(want) {
			t.Errorf("host object file %s: time %v, %v; want it untouched (%v)", p, fi.ModTime(), err, want)
		}
	}
	tips, err := os.ReadFile(filepath.Join(dest, ".git", PreparedTips))
	if err != nil || !strings.Contains(string(tips), "^"+repo.Head+"\n") {
		t.Errorf("prepared tips %q, %v; want HEAD's %s among them", tips, err, repo.Head)
	}
	if got := fixtureGit(t, dest, "status", "--porcelain"); got != "?? copy.txt" {
		t.Errorf("MarkPrepared changed the guest's index: status %q", got)
	}
}
