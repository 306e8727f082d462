package gitrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/internal/model"
)

// What the Build tests compare: work trees, whole repositories before
// and after, and what the guest's git says.

// fixtureTree is dir's work tree, path → kind, permission bits and
// content hash (a symlink: its target), leaving out every .git and the
// paths in skip (and what is below them). Directories are left out, as
// git leaves them out.
func fixtureTree(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.Name() == ".git" || slices.Contains(skip, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			tree[rel] = fixtureDescribe(t, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// fixtureDescribe is one file's kind, permissions and content.
func fixtureDescribe(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		return "symlink → " + target
	case fi.IsDir():
		return "dir " + fi.Mode().Perm().String()
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return "file " + fi.Mode().Perm().String() + " " + hex.EncodeToString(sum[:8])
	}
	return "other " + fi.Mode().String()
}

// fixtureSnapshot is everything under dir, .git included, directories
// too: the host repository's state, which Build must leave as it was.
func fixtureSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		snap[filepath.ToSlash(rel)] = fixtureDescribe(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// And what git says of it, in case a change is not in a file's
	// content (an index rewritten with the same bytes is fine).
	snap["<refs>"] = fixtureGit(t, dir, "for-each-ref", "--format=%(refname) %(objectname)")
	snap["<HEAD>"] = fixtureGit(t, dir, "rev-parse", "--symbolic-full-name", "HEAD")
	return snap
}

// fixtureDiff lists the keys where want and got differ, one a line.
func fixtureDiff(want, got map[string]string) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !wok:
			fmt.Fprintf(&b, "  %s: unexpected %s\n", k, g)
		case !gok:
			fmt.Fprintf(&b, "  %s: missing (want %s)\n", k, w)
		case w != g:
			fmt.Fprintf(&b, "  %s: got %s, want %s\n", k, g, w)
		}
	}
	return b.String()
}

// fixtureStatus is git status --porcelain in dir.
func fixtureStatus(t *testing.T, dir string) string {
	t.Helper()
	return fixtureGit(t, dir, "status", "--porcelain", "--untracked-files=all")
}

// fixtureBuild inspects root and builds from it into a new directory,
// checking the host repository is left as it was.
func fixtureBuild(t *testing.T, root string, mode model.WorkspacePrepareMode) (Repo, string, BuildResult) {
	t.Helper()
	ctx := context.Background()
	repo, err := Inspect(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	before := fixtureSnapshot(t, root)
	dest := filepath.Join(t.TempDir(), "guest")
	res, err := Build(ctx, repo, BuildOptions{Mode: mode, Branch: "banger/vm1", Dest: dest})
	if err != nil {
		t.Fatalf("Build %s: %v", mode, err)
	}
	if d := fixtureDiff(before, fixtureSnapshot(t, root)); d != "" {
		t.Errorf("Build %s changed the host repository:\n%s", mode, d)
	}
	return repo, dest, res
}

// fixtureCheckGuest checks what every mode gives the guest: on
// banger/vm1 at the host's HEAD, the host's identity, and nothing that
// leads back to the host (no remote, no alternates, no host path in
// any git file but the objects).
func fixtureCheckGuest(t *testing.T, repo Repo, dest string) {
	t.Helper()
	if got := fixtureGit(t, dest, "symbolic-ref", "--short", "HEAD"); got != "banger/vm1" {
		t.Errorf("guest's branch is %q, want banger/vm1", got)
	}
	if got := fixtureGit(t, dest, "rev-parse", "HEAD"); got != repo.Head {
		t.Errorf("guest's HEAD is %s, want the host's %s", got, repo.Head)
	}
	for key, want := range map[string]string{"user.name": "Fixture User", "user.email": "fixture@example.com"} {
		if got, _ := fixtureGitErr(dest, "config", "--local", key); got != want {
			t.Errorf("guest's local %s is %q, want %q", key, got, want)
		}
	}
	if got, _ := fixtureGitErr(dest, "config", "--local", "--get-regexp", `^remote\.`); got != "" {
		t.Errorf("guest has a remote configured: %s", got)
	}
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		rel = "/" + filepath.ToSlash(rel)
		if !strings.Contains(rel, "/.git/") || strings.Contains(rel, "/.git/objects/pack/") ||
			(strings.Contains(rel, "/.git/objects/") && !strings.Contains(rel, "/objects/info/")) {
			return nil
		}
		if strings.HasSuffix(rel, "/objects/info/alternates") {
			t.Errorf("guest has alternates: %s", rel)
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(repo.Root)) {
			t.Errorf("guest's %s names the host repository's path %s", rel, repo.Root)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fixtureCheckSubmodules checks the guest has lib/x and lib/x/deep
// checked out at the commits recorded, initialised.
func fixtureCheckSubmodules(t *testing.T, host, dest string) {
	t.Helper()
	for _, sm := range []struct{ super, path string }{{"", "lib/x"}, {"lib/x", "deep"}} {
		superHost, superDest := filepath.Join(host, sm.super), filepath.Join(dest, sm.super)
		rec := strings.Fields(fixtureGit(t, superHost, "ls-files", "-s", "--", sm.path))
		if len(rec) < 2 {
			t.Fatalf("no gitlink %s in %s", sm.path, superHost)
		}
		if got := fixtureGit(t, filepath.Join(superDest, sm.path), "rev-parse", "HEAD"); got != rec[1] {
			t.Errorf("guest's submodule %s is at %s, want the recorded %s", sm.path, got, rec[1])
		}
		st := fixtureGit(t, superDest, "submodule", "status", "--", sm.path)
		if !strings.HasPrefix(st, " "+rec[1]) {
			t.Errorf("guest's git submodule status for %s is %q, want it initialised at %s", sm.path, st, rec[1])
		}
	}
	url := fixtureGit(t, host, "config", "-f", ".gitmodules", "submodule.lib/x.url")
	if got, _ := fixtureGitErr(dest, "config", "--local", "submodule.lib/x.url"); got != url {
		t.Errorf("guest's submodule.lib/x.url is %q, want %q", got, url)
	}
}
