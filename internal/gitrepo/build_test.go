package gitrepo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/internal/model"
)

// TestBuildShallowOverlay: HEAD's commit alone, on banger/vm1, with the
// host's uncommitted work laid over it so git status reads the same,
// the same files (ignored ones left out), the submodules at their
// recorded commits, the LFS pointer as a pointer, and no hook of the
// user's run.
func TestBuildShallowOverlay(t *testing.T) {
	mark := fixtureIsolate(t)
	root, outside := newFixtureRepo(t)
	fixtureResetMark(t, mark)
	var steps []string
	repo, err := Inspect(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	before := fixtureSnapshot(t, root)
	dest := filepath.Join(t.TempDir(), "guest")
	var last Progress
	res, err := Build(t.Context(), repo, BuildOptions{Branch: "banger/vm1", Dest: dest, Progress: func(p Progress) {
		if len(steps) == 0 || steps[len(steps)-1] != p.Step {
			steps = append(steps, p.Step)
		}
		last = p
	}})
	if err != nil {
		t.Fatal(err)
	}
	if d := fixtureDiff(before, fixtureSnapshot(t, root)); d != "" {
		t.Errorf("Build changed the host repository:\n%s", d)
	}
	fixtureCheckGuest(t, repo, dest)
	fixtureCheckOverlay(t, root, dest, res)
	if got := fixtureGit(t, dest, "rev-list", "--count", "HEAD"); got != "1" {
		t.Errorf("guest has %s commits in HEAD's history, want 1 (depth 1)", got)
	}
	if got := fixtureGit(t, dest, "rev-parse", "--is-shallow-repository"); got != "true" {
		t.Errorf("guest is shallow: %s, want true", got)
	}
	if got := fixtureGit(t, dest, "for-each-ref", "--format=%(refname)"); got != "refs/heads/banger/vm1" {
		t.Errorf("guest's refs are %q, want refs/heads/banger/vm1 alone", got)
	}
	want := []string{buildStepHistory, buildStepCheckout, buildStepChanges, buildStepSubmodules, buildStepDone}
	if !slices.Equal(steps, want) {
		t.Errorf("progress steps %v, want %v", steps, want)
	}
	if last.Files != res.Files || last.Bytes != res.Bytes {
		t.Errorf("last progress %+v, want the result's %d files, %d bytes", last, res.Files, res.Bytes)
	}
	fixtureCheckNoEscape(t, outside, mark)
}

// TestBuildFullCopy: every host branch and tag under its own name (and
// nothing else: no stash, no remote-tracking ref), the whole history,
// and the same overlay as shallow_overlay.
func TestBuildFullCopy(t *testing.T) {
	mark := fixtureIsolate(t)
	root, outside := newFixtureRepo(t)
	fixtureResetMark(t, mark)
	repo, dest, res := fixtureBuild(t, root, model.WorkspacePrepareModeFullCopy)
	fixtureCheckGuest(t, repo, dest)
	fixtureCheckOverlay(t, root, dest, res)
	if got, want := fixtureGit(t, dest, "rev-list", "--count", "--all"), fixtureGit(t, root, "rev-list", "--count", "--branches", "--tags"); got != want {
		t.Errorf("guest has %s commits, want the host branches' and tags' %s", got, want)
	}
	if got := fixtureGit(t, dest, "rev-parse", "--is-shallow-repository"); got != "false" {
		t.Errorf("guest is shallow: %s, want false", got)
	}
	format := "--format=%(refname) %(objectname)"
	want := fixtureGit(t, root, "for-each-ref", format, "refs/heads", "refs/tags") + "\n" +
		"refs/heads/banger/vm1 " + repo.Head
	got := fixtureGit(t, dest, "for-each-ref", format)
	if fixtureSortLines(got) != fixtureSortLines(want) {
		t.Errorf("guest's refs:\n%s\nwant the host's branches and tags and banger/vm1:\n%s", got, want)
	}
	if got := fixtureGit(t, dest, "config", "core.bare"); got != "false" {
		t.Errorf("guest's core.bare is %s, want false", got)
	}
	fixtureCheckNoEscape(t, outside, mark)
}

// TestBuildMetadataOnly: HEAD's whole history and no file outside .git;
// git status is clean (every entry skip-worktree), and widening the
// sparse checkout brings the committed files.
func TestBuildMetadataOnly(t *testing.T) {
	fixtureIsolate(t)
	root, _ := newFixtureRepo(t)
	repo, dest, res := fixtureBuild(t, root, model.WorkspacePrepareModeMetadataOnly)
	fixtureCheckGuest(t, repo, dest)
	if got := fixtureStatus(t, dest); got != "" {
		t.Errorf("guest's git status:\n%s\nwant it clean", got)
	}
	if tree := fixtureTree(t, dest); len(tree) != 0 {
		t.Errorf("guest has work-tree files %v, want none", tree)
	}
	if got, want := fixtureGit(t, dest, "rev-list", "--count", "HEAD"), fixtureGit(t, root, "rev-list", "--count", "HEAD"); got != want {
		t.Errorf("guest has %s commits in HEAD's history, want the host's %s", got, want)
	}
	if got := fixtureGit(t, dest, "rev-parse", "--is-shallow-repository"); got != "false" {
		t.Errorf("guest is shallow: %s, want false", got)
	}
	if got := fixtureGit(t, dest, "for-each-ref", "--format=%(refname)"); got != "refs/heads/banger/vm1" {
		t.Errorf("guest's refs are %q, want refs/heads/banger/vm1 alone", got)
	}
	if res.Submodules != 0 || res.LFSPointers != 0 {
		t.Errorf("result %+v, want no submodules or LFS pointers (nothing checked out)", res)
	}
	fixtureGit(t, dest, "sparse-checkout", "disable")
	head := fixtureGit(t, dest, "ls-tree", "-r", "--name-only", "HEAD")
	if b, err := os.ReadFile(filepath.Join(dest, "docs/guide.md")); err != nil || string(b) != "guide\n" {
		t.Errorf("after sparse-checkout disable, docs/guide.md is %q (%v), want the committed file; HEAD has:\n%s", b, err, head)
	}
	if got := fixtureStatus(t, dest); got != "" {
		t.Errorf("guest's git status after sparse-checkout disable:\n%s\nwant it clean", got)
	}
}

// TestBuildDetachedHead: a host on a detached HEAD still gives the guest
// its branch at that commit, and full_copy still has every branch.
func TestBuildDetachedHead(t *testing.T) {
	for _, mode := range []model.WorkspacePrepareMode{model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy} {
		t.Run(string(mode), func(t *testing.T) {
			fixtureIsolate(t)
			root, _ := newFixtureRepo(t)
			fixtureGit(t, root, "switch", "-q", "--detach", "HEAD")
			repo, dest, res := fixtureBuild(t, root, mode)
			if repo.Branch != "" {
				t.Fatalf("host branch %q, want detached", repo.Branch)
			}
			fixtureCheckGuest(t, repo, dest)
			fixtureCheckOverlay(t, root, dest, res)
			_, err := fixtureGitErr(dest, "rev-parse", "--verify", "-q", "refs/heads/main")
			if hasMain := err == nil; hasMain != (mode == model.WorkspacePrepareModeFullCopy) {
				t.Errorf("guest has branch main: %v, want it only in full_copy", hasMain)
			}
		})
	}
}

// fixtureCheckOverlay checks a shallow_overlay or full_copy guest has
// the host's uncommitted work exactly, the submodules, and the LFS
// pointer as a pointer.
func fixtureCheckOverlay(t *testing.T, root, dest string, res BuildResult) {
	t.Helper()
	if got, want := fixtureStatus(t, dest), fixtureStatus(t, root); got != want {
		t.Errorf("guest's git status:\n%s\nwant the host's:\n%s", got, want)
	}
	// The staged side too: the same blobs at the same modes.
	if got, want := fixtureGit(t, dest, "diff", "--cached", "--raw", "--no-renames"), fixtureGit(t, root, "diff", "--cached", "--raw", "--no-renames"); got != want {
		t.Errorf("guest's staged changes:\n%s\nwant the host's:\n%s", got, want)
	}
	if d := fixtureDiff(fixtureTree(t, root, fixtureIgnored...), fixtureTree(t, dest)); d != "" {
		t.Errorf("guest's work tree differs from the host's (ignored files left out):\n%s", d)
	}
	for _, p := range fixtureIgnored {
		if _, err := os.Lstat(filepath.Join(dest, p)); err == nil {
			t.Errorf("ignored %s was copied", p)
		}
	}
	fixtureCheckSubmodules(t, root, dest)
	if res.Submodules != 2 {
		t.Errorf("result says %d submodules, want 2 (lib/x and lib/x/deep)", res.Submodules)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "model.bin")); err != nil || string(b) != fixtureLFSPointer {
		t.Errorf("model.bin is %q (%v), want the LFS pointer as it is", b, err)
	}
	if res.LFSPointers != 1 || !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "git lfs pull") }) {
		t.Errorf("result: %d LFS pointers, warnings %q; want 1 and a warning saying git lfs pull", res.LFSPointers, res.Warnings)
	}
	tree := fixtureTree(t, dest)
	if res.Files <= len(tree) || res.Bytes <= 0 {
		t.Errorf("result counts %d files, %d bytes; want more than the %d work-tree files (.git counts)", res.Files, res.Bytes, len(tree))
	}
}

// fixtureCheckNoEscape checks nothing was written through the host's
// symlink linkdir (to outside) and no hook of the user's ran.
func fixtureCheckNoEscape(t *testing.T, outside, mark string) {
	t.Helper()
	if names, _ := os.ReadDir(outside); len(names) != 0 {
		t.Errorf("Build wrote %v into %s, through a symlink", names, outside)
	}
	if _, err := os.Lstat(mark); err == nil {
		t.Errorf("a hook from the user's global configuration ran")
	}
}

// fixtureResetMark checks the fixture's own checkouts ran the user's
// post-checkout hook (so the mark shows when one runs), and removes the
// mark.
func fixtureResetMark(t *testing.T, mark string) {
	t.Helper()
	if err := os.Remove(mark); err != nil {
		t.Fatalf("the global post-checkout hook did not run for the fixture's own git: %v", err)
	}
}

func fixtureSortLines(s string) string {
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
