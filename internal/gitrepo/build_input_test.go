package gitrepo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// newFixtureSmall is a repository with one commit of one file, for the
// tests that need no more.
func newFixtureSmall(t *testing.T) Repo {
	t.Helper()
	root := newFixtureInit(t, "small")
	fixtureWrite(t, filepath.Join(root, "f.txt"), "one\n")
	fixtureCommit(t, root, "one")
	repo, err := Inspect(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestBuildBadInput: each mistake is refused as the caller's, says what
// is wrong and what would do, and makes nothing.
func TestBuildBadInput(t *testing.T) {
	fixtureIsolate(t)
	repo := newFixtureSmall(t)
	tmp := t.TempDir()
	exists := filepath.Join(tmp, "exists")
	if err := os.Mkdir(exists, 0o755); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(tmp, "fresh")
	cases := []struct {
		name string
		repo Repo
		opts BuildOptions
		want []string
	}{
		{"dest exists", repo, BuildOptions{Branch: "banger/vm1", Dest: exists}, []string{exists, "exists already", "does not exist yet"}},
		{"no dest", repo, BuildOptions{Branch: "banger/vm1"}, []string{"no destination"}},
		{"no parent", repo, BuildOptions{Branch: "banger/vm1", Dest: filepath.Join(tmp, "none", "guest")}, []string{"parent", "does not exist", "existing directory"}},
		{"dest in repository", repo, BuildOptions{Branch: "banger/vm1", Dest: filepath.Join(repo.Root, "guest")}, []string{"inside the repository", "outside it"}},
		{"dest in git dir", repo, BuildOptions{Branch: "banger/vm1", Dest: filepath.Join(repo.GitDir, "guest")}, []string{"inside the repository"}},
		{"no branch", repo, BuildOptions{Dest: fresh}, []string{"no branch name", "banger/<vm>"}},
		{"bad branch", repo, BuildOptions{Branch: "bad..name", Dest: fresh}, []string{`"bad..name" is not valid`, "check-ref-format", "banger/<vm>"}},
		{"dash branch", repo, BuildOptions{Branch: "-x", Dest: fresh}, []string{`"-x" is not valid`}},
		{"HEAD branch", repo, BuildOptions{Branch: "HEAD", Dest: fresh}, []string{`"HEAD" is not valid`}},
		{"previous branch", repo, BuildOptions{Branch: "@{-1}", Dest: fresh}, []string{`"@{-1}" is not valid`}},
		{"space in branch", repo, BuildOptions{Branch: "a b", Dest: fresh}, []string{"is not valid"}},
		{"unknown mode", repo, BuildOptions{Mode: "deep_copy", Branch: "banger/vm1", Dest: fresh}, []string{`"deep_copy"`, "shallow_overlay, full_copy, metadata_only"}},
		{"no repository", Repo{}, BuildOptions{Branch: "banger/vm1", Dest: fresh}, []string{"Inspect"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(t.Context(), c.repo, c.opts)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Build: %v, want an invalid-argument error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Lstat(fresh); err == nil {
				t.Errorf("Build made %s", fresh)
			}
			if names, _ := os.ReadDir(exists); len(names) != 0 {
				t.Errorf("Build wrote %v into the existing %s", names, exists)
			}
		})
	}
	if fixtureStatus(t, repo.Root) != "" {
		t.Errorf("the repository changed:\n%s", fixtureStatus(t, repo.Root))
	}
}

// TestBuildUnmerged: a host in the middle of a merge is refused (the
// guest could not go on with it) in the overlay modes, saying what to
// do; metadata_only, which carries no uncommitted work, still works.
func TestBuildUnmerged(t *testing.T) {
	fixtureIsolate(t)
	repo := newFixtureSmall(t)
	root := repo.Root
	fixtureGit(t, root, "switch", "-q", "-c", "other")
	fixtureWrite(t, filepath.Join(root, "f.txt"), "other\n")
	fixtureCommit(t, root, "other")
	fixtureGit(t, root, "switch", "-q", "main")
	fixtureWrite(t, filepath.Join(root, "f.txt"), "main\n")
	fixtureCommit(t, root, "main")
	if _, err := fixtureGitErr(root, "merge", "-q", "other"); err == nil {
		t.Fatal("the fixture's merge did not conflict")
	}
	repo, err := Inspect(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []model.WorkspacePrepareMode{model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy} {
		dest := filepath.Join(t.TempDir(), "guest")
		_, err := Build(t.Context(), repo, BuildOptions{Mode: mode, Branch: "banger/vm1", Dest: dest})
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("%s: Build: %v, want a conflict error", mode, err)
		}
		for _, w := range []string{root, "unmerged paths", "f.txt", "finish or abort"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", mode, err, w)
			}
		}
		if _, err := os.Lstat(dest); err == nil {
			t.Errorf("%s: Build left %s", mode, dest)
		}
	}
	_, dest, _ := fixtureBuild(t, root, model.WorkspacePrepareModeMetadataOnly)
	if got := fixtureStatus(t, dest); got != "" {
		t.Errorf("metadata_only guest's status:\n%s\nwant it clean", got)
	}
}

// TestBuildCancelled: a ctx cancelled before Build, or while it runs
// (after each step), leaves no Dest.
func TestBuildCancelled(t *testing.T) {
	fixtureIsolate(t)
	root, _ := newFixtureRepo(t)
	repo, err := Inspect(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	before := fixtureSnapshot(t, root)
	for _, at := range []string{"before", buildStepHistory, buildStepCheckout, buildStepChanges, buildStepSubmodules} {
		for _, mode := range []model.WorkspacePrepareMode{model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy, model.WorkspacePrepareModeMetadataOnly} {
			if mode == model.WorkspacePrepareModeMetadataOnly && (at == buildStepChanges || at == buildStepSubmodules) {
				continue // no such steps
			}
			ctx, cancel := context.WithCancel(t.Context())
			if at == "before" {
				cancel()
			}
			dest := filepath.Join(t.TempDir(), "guest")
			_, err := Build(ctx, repo, BuildOptions{Mode: mode, Branch: "banger/vm1", Dest: dest, Progress: func(p Progress) {
				if p.Step == at {
					cancel()
				}
			}})
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s, cancelled %s: Build: %v, want context.Canceled", mode, at, err)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s, cancelled %s: %s is left (%v)", mode, at, dest, err)
			}
		}
	}
	if d := fixtureDiff(before, fixtureSnapshot(t, root)); d != "" {
		t.Errorf("cancelled Builds changed the host repository:\n%s", d)
	}
}

// TestBuildSubmoduleNotInitialised: a submodule the host never
// initialised is left empty in the guest, with a warning, and git
// status still reads the same.
func TestBuildSubmoduleNotInitialised(t *testing.T) {
	fixtureIsolate(t)
	root, _ := newFixtureRepo(t)
	fixtureGit(t, root, "submodule", "deinit", "-q", "-f", "lib/x")
	_, dest, res := fixtureBuild(t, root, "")
	if got, want := fixtureStatus(t, dest), fixtureStatus(t, root); got != want {
		t.Errorf("guest's git status:\n%s\nwant the host's:\n%s", got, want)
	}
	if names, err := os.ReadDir(filepath.Join(dest, "lib/x")); err != nil || len(names) != 0 {
		t.Errorf("guest's lib/x has %v (%v), want an empty directory", names, err)
	}
	want := "submodule lib/x is not initialised on the host; left empty"
	if res.Submodules != 0 || !strings.Contains(strings.Join(res.Warnings, "\n"), want) {
		t.Errorf("result: %d submodules, warnings %q; want 0 and %q", res.Submodules, res.Warnings, want)
	}
}

// TestBuildSubmoduleDirty: a submodule with work of its own on the host
// comes in clean at the recorded commit, and a warning says so.
func TestBuildSubmoduleDirty(t *testing.T) {
	fixtureIsolate(t)
	root, _ := newFixtureRepo(t)
	fixtureWrite(t, filepath.Join(root, "lib/x/sub.txt"), "changed in the host's submodule\n")
	_, dest, res := fixtureBuild(t, root, "")
	if got := fixtureStatus(t, filepath.Join(dest, "lib/x")); got != "" {
		t.Errorf("guest's lib/x status:\n%s\nwant it clean", got)
	}
	want := "submodule lib/x on the host has modified files; the guest has it clean at the recorded commit"
	if !strings.Contains(strings.Join(res.Warnings, "\n"), want) {
		t.Errorf("warnings %q, want %q", res.Warnings, want)
	}
}
