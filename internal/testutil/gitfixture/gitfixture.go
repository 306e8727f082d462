// Package gitfixture makes the git repository workspace tests start
// from: history on main, a second branch, a tag, a submodule, a Git LFS
// pointer file, an ignored .env, and uncommitted work of every kind —
// staged, unstaged, untracked, a deletion, an exec-bit change and a
// symlink. Everything is local (file:// only).
package gitfixture

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// LFSPointer is the content of the fixture's Git LFS pointer file.
const LFSPointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"

// Isolate keeps the machine's git configuration out of the test, and
// gives git an identity.
func Isolate(t testing.TB) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(cfg, []byte("[user]\n\tname = Fixture\n\temail = fixture@example.com\n[protocol \"file\"]\n\tallow = always\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
}

// Git runs git in dir and returns its trimmed output, failing the test
// when it fails.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v in %s: %v\n%s", args, dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes a file under dir, making its parents.
func Write(t testing.TB, dir, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// Committed makes the fixture's history only, at dir/name (clean work
// tree), and returns its path: main with 5 commits, branch "feature",
// tag "v1", submodule "lib/sub", LFS pointer "assets/big.bin", a
// tracked script "run.sh", a symlink "link" and an ignored .env.
func Committed(t testing.TB, dir, name string) string {
	t.Helper()
	sub := filepath.Join(dir, name+"-sub")
	Git(t, dir, "init", "-q", "-b", "main", sub)
	Write(t, sub, "sub.txt", "in the submodule\n", 0o644)
	Git(t, sub, "add", ".")
	Git(t, sub, "commit", "-q", "-m", "sub: first")

	repo := filepath.Join(dir, name)
	Git(t, dir, "init", "-q", "-b", "main", repo)
	Write(t, repo, ".gitignore", ".env\nbuild/\n", 0o644)
	Write(t, repo, ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n", 0o644)
	Write(t, repo, "README.md", "# fixture\n", 0o644)
	Write(t, repo, "run.sh", "#!/bin/sh\necho run\n", 0o644)
	Write(t, repo, "src/main.go", "package main\n", 0o644)
	Write(t, repo, "gone.txt", "to be deleted\n", 0o644)
	Write(t, repo, "assets/big.bin", LFSPointer, 0o644)
	if err := os.Symlink("README.md", filepath.Join(repo, "link")); err != nil {
		t.Fatal(err)
	}
	Git(t, repo, "add", ".")
	Git(t, repo, "commit", "-q", "-m", "first")
	for i, msg := range []string{"second", "third", "fourth"} {
		Write(t, repo, "src/main.go", "package main\n// "+msg+"\n"+strings.Repeat("x", i)+"\n", 0o644)
		Git(t, repo, "commit", "-q", "-am", msg)
	}
	Git(t, repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub, "lib/sub")
	Git(t, repo, "commit", "-q", "-m", "add the submodule")
	Git(t, repo, "tag", "v1")
	Git(t, repo, "branch", "feature", "HEAD~2")
	Write(t, repo, ".env", "SECRET=do-not-copy\n", 0o600)
	Write(t, repo, "build/out.o", "ignored build output\n", 0o644)
	return repo
}

// New makes the fixture with uncommitted work laid over its history:
// staged (a new file, a change), unstaged (a change, an exec bit), a
// deletion, untracked files, and returns its path.
func New(t testing.TB, dir, name string) string {
	t.Helper()
	repo := Committed(t, dir, name)
	Write(t, repo, "staged-new.txt", "staged\n", 0o644)
	Write(t, repo, "README.md", "# fixture, staged\n", 0o644)
	Git(t, repo, "add", "staged-new.txt", "README.md")
	Write(t, repo, "README.md", "# fixture, staged, then changed\n", 0o644)
	if err := os.Chmod(filepath.Join(repo, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(repo, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	Write(t, repo, "untracked.txt", "untracked\n", 0o644)
	Write(t, repo, "notes/todo.md", "- more\n", 0o644)
	return repo
}

// Tree is dir's files (without .git and what git ignores is NOT left
// out: the caller compares like with like) as "path mode sha256" lines,
// symlinks as their target: a fingerprint two trees can be compared by.
func Tree(t testing.TB, dir string, skip ...string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, rel+" symlink "+target)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			exec := "644"
			if info.Mode()&0o100 != 0 {
				exec = "755"
			}
			lines = append(lines, rel+" "+exec+" "+hex.EncodeToString(sum[:8]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}
