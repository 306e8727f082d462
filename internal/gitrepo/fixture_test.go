package gitrepo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A host repository for the tests, made with real git: several commits,
// a second branch, tags, a stash and a remote-tracking ref, a submodule
// with a submodule of its own, a Git LFS pointer file, ignored files,
// and every kind of uncommitted work: staged, staged then changed
// again, unstaged, intent-to-add, untracked, deleted (staged and not),
// an exec bit set, a new symlink, a file turned into a symlink and back,
// a symlink (to a directory outside the repository) turned into a
// directory, and a directory turned into a symlink to that outside
// directory. The machine's git configuration is shut out.

// fixtureLFSPointer is the Git LFS pointer file the fixture commits as
// model.bin (git-lfs itself is not needed).
const fixtureLFSPointer = "version https://git-lfs.github.com/spec/v1\n" +
	"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n" +
	"size 12345\n"

// fixtureIgnored are the fixture's ignored files, which no Build copies.
var fixtureIgnored = []string{".env", "build/out.o"}

// fixtureIsolate shuts the machine's git configuration out of the test:
// a global configuration of the test's own (an identity git needs to
// commit, and a hooks path whose post-checkout hook leaves a mark, so a
// test sees if any git run by Build used it) and no system one. It
// returns the mark's path.
func fixtureIsolate(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	mark := filepath.Join(dir, "hook-ran")
	hooks := filepath.Join(dir, "hooks")
	fixtureWrite(t, filepath.Join(hooks, "post-checkout"), "#!/bin/sh\ntouch '"+mark+"'\n")
	fixtureChmod(t, filepath.Join(hooks, "post-checkout"), 0o755)
	cfg := filepath.Join(dir, "gitconfig")
	fixtureWrite(t, cfg, "[init]\n\tdefaultBranch = main\n[user]\n\tname = Global User\n\temail = global@example.com\n"+
		"[advice]\n\tdetachedHead = false\n[core]\n\thooksPath = "+hooks+"\n")
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return mark
}

// fixtureGit runs git in dir and returns its output, trimmed of the
// final newline.
func fixtureGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := fixtureGitErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s in %s: %v", strings.Join(args, " "), dir, err)
	}
	return out
}

// fixtureGitErr runs git in dir, its standard error in the error.
func fixtureGitErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &fixtureGitError{err: err, stderr: stderr.String()}
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

type fixtureGitError struct {
	err    error
	stderr string
}

func (e *fixtureGitError) Error() string {
	return e.err.Error() + ": " + strings.TrimSpace(e.stderr)
}

// fixtureWrite writes a file, making its directory.
func fixtureWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fixtureChmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func fixtureSymlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func fixtureRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// newFixtureInit makes an empty repository in a new directory named
// name, with its own identity.
func newFixtureInit(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	fixtureGit(t, t.TempDir(), "init", "-q", "-b", "main", dir)
	fixtureGit(t, dir, "config", "user.name", "Fixture User")
	fixtureGit(t, dir, "config", "user.email", "fixture@example.com")
	return dir
}

// fixtureCommit commits everything in dir.
func fixtureCommit(t *testing.T, dir, msg string) {
	t.Helper()
	fixtureGit(t, dir, "add", "-A")
	fixtureGit(t, dir, "commit", "-q", "-m", msg)
}

// newFixtureSubmodule makes the repository the fixture's submodule is
// added from: two commits and a submodule of its own ("deep").
func newFixtureSubmodule(t *testing.T) string {
	t.Helper()
	deep := newFixtureInit(t, "deep")
	fixtureWrite(t, filepath.Join(deep, "deep.txt"), "deep\n")
	fixtureCommit(t, deep, "deep 1")
	sub := newFixtureInit(t, "sub")
	fixtureWrite(t, filepath.Join(sub, "sub.txt"), "sub 1\n")
	fixtureCommit(t, sub, "sub 1")
	fixtureGit(t, sub, "-c", "protocol.file.allow=always", "submodule", "add", "-q", deep, "deep")
	fixtureWrite(t, filepath.Join(sub, "sub.txt"), "sub 2\n")
	fixtureCommit(t, sub, "sub 2")
	return sub
}

// newFixtureRepo makes the host repository most tests build from, on
// branch main, and returns its work tree. outside, a directory apart
// from it, is where its committed symlink "linkdir" points.
func newFixtureRepo(t *testing.T) (root, outside string) {
	t.Helper()
	sub := newFixtureSubmodule(t)
	outside = t.TempDir()
	root = newFixtureInit(t, "host repo")
	w := func(p, content string) { fixtureWrite(t, filepath.Join(root, p), content) }
	w("README.md", "# fixture\n")
	w("src/main.go", "package main\n")
	w("script.sh", "#!/bin/sh\necho hi\n")
	w("data/old.txt", "old\n")
	w("moved/f.txt", "in a directory that becomes a symlink\n")
	w("removed.txt", "to be removed\n")
	w("tolink", "a file that becomes a symlink\n")
	w(".gitignore", ".env\nbuild/\n")
	w(".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n")
	w("model.bin", fixtureLFSPointer)
	fixtureSymlink(t, "README.md", filepath.Join(root, "link"))
	fixtureSymlink(t, "src/main.go", filepath.Join(root, "linkfile"))
	fixtureSymlink(t, outside, filepath.Join(root, "linkdir"))
	fixtureCommit(t, root, "first")
	fixtureGit(t, root, "tag", "v1")
	fixtureGit(t, root, "branch", "feature")
	w("docs/guide.md", "guide\n")
	fixtureCommit(t, root, "second")
	fixtureGit(t, root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub, "lib/x")
	fixtureGit(t, root, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init", "--recursive")
	fixtureCommit(t, root, "third: the submodule")
	fixtureGit(t, root, "tag", "-a", "-m", "release two", "v2")
	fixtureGit(t, root, "update-ref", "refs/remotes/origin/old", "HEAD~1")
	w("src/main.go", "package main // stashed\n")
	fixtureGit(t, root, "stash", "-q")
	fixtureGit(t, root, "switch", "-q", "feature")
	w("feature.txt", "feature\n")
	fixtureCommit(t, root, "feature work")
	fixtureGit(t, root, "switch", "-q", "main")
	fixtureUncommitted(t, root, outside)
	return root, outside
}

// fixtureUncommitted leaves every kind of uncommitted work in root.
func fixtureUncommitted(t *testing.T, root, outside string) {
	t.Helper()
	w := func(p, content string) { fixtureWrite(t, filepath.Join(root, p), content) }
	w("src/main.go", "package main // staged\n")
	w("staged_new.txt", "new and staged\n")
	w("README.md", "# fixture, staged\n")
	fixtureGit(t, root, "add", "src/main.go", "staged_new.txt", "README.md")
	w("README.md", "# fixture, staged, then changed again\n")
	w("docs/guide.md", "guide, unstaged\n")
	w("ita.txt", "intent to add\n")
	fixtureGit(t, root, "add", "-N", "ita.txt")
	w("notes/todo.txt", "untracked\n")
	w("untracked.txt", "untracked too\n")
	fixtureRemove(t, filepath.Join(root, "data/old.txt"))
	fixtureGit(t, root, "rm", "-q", "removed.txt")
	fixtureChmod(t, filepath.Join(root, "script.sh"), 0o755)
	fixtureSymlink(t, "src/main.go", filepath.Join(root, "newlink"))
	fixtureSymlink(t, "README.md", filepath.Join(root, "tolink"))
	fixtureRemove(t, filepath.Join(root, "linkfile"))
	w("linkfile", "a symlink that became a file\n")
	fixtureRemove(t, filepath.Join(root, "linkdir"))
	w("linkdir/inner.txt", "a symlink that became a directory\n")
	fixtureRemove(t, filepath.Join(root, "moved"))
	fixtureSymlink(t, outside, filepath.Join(root, "moved"))
	w(".env", "SECRET=do-not-copy\n")
	w("build/out.o", "ignored\n")
}
