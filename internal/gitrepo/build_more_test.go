package gitrepo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/internal/model"
)

// TestBuildOddNames: paths git quotes or splits badly (spaces, a tab, a
// newline, a quote, a leading dash, non-ASCII) come over staged,
// unstaged, untracked and deleted alike.
func TestBuildOddNames(t *testing.T) {
	fixtureIsolate(t)
	repo := newFixtureSmall(t)
	root := repo.Root
	names := []string{"a b.txt", "tab\there", "new\nline", `quo"te`, "-dash", "ünï cödé.txt", "dir with space/x y"}
	for _, n := range names {
		fixtureWrite(t, filepath.Join(root, n), "committed "+n+"\n")
	}
	fixtureCommit(t, root, "odd names")
	fixtureWrite(t, filepath.Join(root, names[0]), "staged\n")
	fixtureGit(t, root, "add", "--", names[0])
	fixtureWrite(t, filepath.Join(root, names[1]), "unstaged\n")
	fixtureRemove(t, filepath.Join(root, names[2]))
	fixtureGit(t, root, "rm", "-q", "--", names[3])
	fixtureChmod(t, filepath.Join(root, names[4]), 0o755)
	fixtureSymlink(t, names[0], filepath.Join(root, names[5]))
	fixtureWrite(t, filepath.Join(root, "dir with space", "new\tfile"), "untracked\n")
	for _, mode := range []model.WorkspacePrepareMode{model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy} {
		_, dest, _ := fixtureBuild(t, root, mode)
		if got, want := fixtureStatus(t, dest), fixtureStatus(t, root); got != want {
			t.Errorf("%s: guest's git status:\n%s\nwant the host's:\n%s", mode, got, want)
		}
		if d := fixtureDiff(fixtureTree(t, root), fixtureTree(t, dest)); d != "" {
			t.Errorf("%s: guest's work tree differs from the host's:\n%s", mode, d)
		}
	}
}

// TestBuildLinkedWorktree: a host work tree made with git worktree add
// (its .git a file, its objects in the main repository) builds as well.
func TestBuildLinkedWorktree(t *testing.T) {
	fixtureIsolate(t)
	main := newFixtureSmall(t)
	wt := filepath.Join(t.TempDir(), "linked")
	fixtureGit(t, main.Root, "worktree", "add", "-q", "-b", "topic", wt)
	fixtureWrite(t, filepath.Join(wt, "f.txt"), "changed in the linked work tree\n")
	fixtureWrite(t, filepath.Join(wt, "new.txt"), "untracked\n")
	for _, mode := range []model.WorkspacePrepareMode{model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy, model.WorkspacePrepareModeMetadataOnly} {
		before := fixtureSnapshot(t, main.Root)
		repo, dest, _ := fixtureBuild(t, wt, mode)
		if d := fixtureDiff(before, fixtureSnapshot(t, main.Root)); d != "" {
			t.Errorf("%s: Build changed the main repository:\n%s", mode, d)
		}
		if repo.GitDir == repo.CommonDir {
			t.Fatalf("%s is not a linked work tree", wt)
		}
		fixtureCheckGuest(t, repo, dest)
		want := fixtureStatus(t, wt)
		if mode == model.WorkspacePrepareModeMetadataOnly {
			want = ""
		}
		if got := fixtureStatus(t, dest); got != want {
			t.Errorf("%s: guest's git status:\n%s\nwant:\n%s", mode, got, want)
		}
		if strings.Contains(fixtureGit(t, dest, "rev-parse", "--git-dir"), main.Root) {
			t.Errorf("%s: guest's git dir is in the host repository", mode)
		}
	}
}

// TestBuildAlternates: a host repository that borrows its objects from
// another (git clone --shared) gives a full_copy guest that holds them
// itself, with no alternates file naming host paths.
func TestBuildAlternates(t *testing.T) {
	fixtureIsolate(t)
	lender := newFixtureSmall(t)
	root := filepath.Join(t.TempDir(), "borrower")
	fixtureGit(t, t.TempDir(), "clone", "-q", "--shared", lender.Root, root)
	fixtureGit(t, root, "config", "user.name", "Fixture User")
	fixtureGit(t, root, "config", "user.email", "fixture@example.com")
	if _, err := os.Stat(filepath.Join(root, ".git/objects/info/alternates")); err != nil {
		t.Fatalf("the fixture borrows nothing: %v", err)
	}
	for _, mode := range []model.WorkspacePrepareMode{model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy, model.WorkspacePrepareModeMetadataOnly} {
		repo, dest, _ := fixtureBuild(t, root, mode)
		fixtureCheckGuest(t, repo, dest)
		if _, err := os.Lstat(filepath.Join(dest, ".git/objects/info/alternates")); err == nil {
			t.Errorf("%s: guest has an alternates file", mode)
		}
		// Every object the guest needs is its own: fsck with the lender gone.
		if _, err := fixtureGitErr(dest, "fsck", "--no-dangling", "--connectivity-only"); err != nil {
			t.Errorf("%s: guest's fsck: %v", mode, err)
		}
	}
}

// TestBuildIndexRefreshed: the guest's index is stat-fresh, so only the
// paths with unstaged changes differ from it (its first git status need
// not read every file, nor rewrite the index).
func TestBuildIndexRefreshed(t *testing.T) {
	fixtureIsolate(t)
	root, _ := newFixtureRepo(t)
	_, dest, _ := fixtureBuild(t, root, "")
	// Before anything runs git status in the guest, which would refresh
	// its index itself; the host's status reads the same (the overlay
	// tests check that).
	got := strings.Split(fixtureGit(t, dest, "diff-files", "-z", "--name-only"), "\x00")
	var want []string
	for line := range strings.SplitSeq(fixtureGit(t, root, "status", "--porcelain=v1", "-z", "--untracked-files=no"), "\x00") {
		if len(line) > 3 && line[1] != ' ' {
			want = append(want, line[3:])
		}
	}
	got = slices.DeleteFunc(got, func(s string) bool { return s == "" })
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("paths stat-dirty in the guest's index: %q, want only the unstaged changes %q", got, want)
	}
}

// TestOverlayParse: porcelain v2 records, renames and unmerged ones
// included (Build asks for no renames, but a record is read right
// whatever git prints).
func TestOverlayParse(t *testing.T) {
	z := strings.Repeat("0", 40)
	a := strings.Repeat("a", 40)
	out := "# branch.oid " + a + "\x00" +
		"1 M. N... 100644 100644 100644 " + a + " " + a + " sp ace\x00" +
		"2 R. N... 100644 100644 100644 " + a + " " + a + " R100 new name\x00old name\x00" +
		"u UU N... 100644 100644 100644 100644 " + a + " " + a + " " + a + " both\x00" +
		"? new\nline\x00" +
		"! ignored\x00" +
		"1 D. N... 100644 000000 000000 " + a + " " + z + " gone\x00"
	entries, unmerged, err := overlayParse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, string(e.kind)+"|"+e.xy+"|"+e.modes[1]+"|"+e.path+"|"+e.orig)
	}
	want := []string{"1|M.|100644|sp ace|", "2|R.|100644|new name|old name", "?|||new\nline|", "1|D.|000000|gone|"}
	if !slices.Equal(got, want) || !slices.Equal(unmerged, []string{"both"}) {
		t.Errorf("parsed %q, unmerged %q; want %q, [both]", got, unmerged, want)
	}
	for _, bad := range []string{"1 M. short", "2 R. N... 100644 100644 100644 " + a + " " + a + " R100 no-source", "x what"} {
		if _, _, err := overlayParse([]byte(bad + "\x00")); err == nil {
			t.Errorf("overlayParse(%q) accepted it", bad)
		}
	}
}

// TestOverlayCheckPath: a path that would leave the work tree or enter
// a .git directory is refused, however git status came to print it.
func TestOverlayCheckPath(t *testing.T) {
	for _, p := range []string{"a", "a/b", "dir/", ".gitignore", "x.git/y"} {
		if err := overlayCheckPath(p); err != nil {
			t.Errorf("overlayCheckPath(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", ".git/config", "sub/.GIT/hooks/x", "./a"} {
		if err := overlayCheckPath(p); err == nil {
			t.Errorf("overlayCheckPath(%q) accepted it", p)
		}
	}
}

// TestBuildSHA256: a host repository hashed with SHA-256 gives a guest
// hashed the same way, in every mode.
func TestBuildSHA256(t *testing.T) {
	fixtureIsolate(t)
	root := filepath.Join(t.TempDir(), "sha256")
	fixtureGit(t, t.TempDir(), "init", "-q", "--object-format=sha256", root)
	fixtureGit(t, root, "config", "user.name", "Fixture User")
	fixtureGit(t, root, "config", "user.email", "fixture@example.com")
	fixtureWrite(t, filepath.Join(root, "f.txt"), "one\n")
	fixtureCommit(t, root, "one")
	fixtureWrite(t, filepath.Join(root, "f.txt"), "staged\n")
	fixtureGit(t, root, "add", "f.txt")
	fixtureWrite(t, filepath.Join(root, "g.txt"), "untracked\n")
	for _, mode := range []model.WorkspacePrepareMode{model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy, model.WorkspacePrepareModeMetadataOnly} {
		repo, dest, _ := fixtureBuild(t, root, mode)
		fixtureCheckGuest(t, repo, dest)
		if got := fixtureGit(t, dest, "rev-parse", "--show-object-format"); got != "sha256" {
			t.Errorf("%s: guest's object format is %s, want sha256", mode, got)
		}
		if mode != model.WorkspacePrepareModeMetadataOnly {
			if got, want := fixtureStatus(t, dest), fixtureStatus(t, root); got != want {
				t.Errorf("%s: guest's git status:\n%s\nwant the host's:\n%s", mode, got, want)
			}
		}
	}
}

// TestBuildProgressThrottled: the overlay's reports while it copies
// come no more than about ten times a second, and carry what was
// written so far.
func TestBuildProgressThrottled(t *testing.T) {
	var reports []Progress
	b := &builder{opts: BuildOptions{Progress: func(p Progress) { reports = append(reports, p) }}}
	b.report(buildStepCheckout)
	for range 1000 {
		b.wrote(1, 10)
	}
	if len(reports) != 1 {
		t.Errorf("%d reports for 1000 files copied at once, want none after the step's: %+v", len(reports)-1, reports[1:])
	}
	time.Sleep(110 * time.Millisecond)
	b.wrote(1, 10)
	b.wrote(1, 10)
	want := []Progress{{Step: buildStepCheckout}, {Step: buildStepChanges, Files: 1001, Bytes: 10010}}
	if !slices.Equal(reports, want) {
		t.Errorf("reports %+v, want %+v", reports, want)
	}
	(&builder{}).wrote(1, 1) // no Progress: nothing to call
}

// TestBuildFullCopyBranchExists: a host branch named like the guest's
// (a VM's name used again) is the guest's new branch at HEAD, not the
// old one.
func TestBuildFullCopyBranchExists(t *testing.T) {
	fixtureIsolate(t)
	repo := newFixtureSmall(t)
	old := repo.Head
	fixtureGit(t, repo.Root, "branch", "banger/vm1")
	fixtureWrite(t, filepath.Join(repo.Root, "f.txt"), "two\n")
	fixtureCommit(t, repo.Root, "two")
	repo, dest, _ := fixtureBuild(t, repo.Root, model.WorkspacePrepareModeFullCopy)
	if repo.Head == old {
		t.Fatal("the fixture's HEAD did not move")
	}
	fixtureCheckGuest(t, repo, dest)
}
