package gitrepo

import (
	"context"
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

// The import tests' world: a host repository with history, a second
// branch, a stash, staged and unstaged changes and an untracked file,
// and a guest cloned from it on banger/vm1. Git runs with the machine's
// configuration shut out.

// bundleWorld is a host repository and the guest made from it.
type bundleWorld struct {
	host  string // the host's work tree
	guest string // the guest's clone, on banger/vm1
	base  string // the commit the workspace started from (host main)
	repo  Repo
}

// bundleIsolate shuts the machine's git configuration out of the test
// and gives git an identity.
func bundleIsolate(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	body := "[init]\n\tdefaultBranch = main\n[user]\n\tname = Host User\n\temail = host@example.com\n[advice]\n\tdetachedHead = false\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
}

// bundleCommit writes name in dir's work tree, commits it with msg and
// returns the commit.
func bundleCommit(t *testing.T, dir, name, content, msg string) string {
	t.Helper()
	fixtureWrite(t, filepath.Join(dir, name), content)
	fixtureGit(t, dir, "add", "--", name)
	fixtureGit(t, dir, "commit", "-q", "-m", msg)
	return fixtureGit(t, dir, "rev-parse", "HEAD")
}

// bundleNewWorld makes the host (main at base, a branch feature, a
// stash, a staged change, an unstaged one and an untracked file) and
// the guest on banger/vm1 at base.
func bundleNewWorld(t *testing.T) *bundleWorld {
	t.Helper()
	return bundleNewWorldIn(t, t.TempDir())
}

// bundleNewWorldIn is bundleNewWorld in root.
func bundleNewWorldIn(t *testing.T, root string) *bundleWorld {
	t.Helper()
	bundleIsolate(t)
	w := &bundleWorld{host: filepath.Join(root, "host"), guest: filepath.Join(root, "guest")}
	fixtureGit(t, root, "init", "-q", w.host)
	bundleCommit(t, w.host, "a.txt", "one\n", "one")
	bundleCommit(t, w.host, "dir/b.txt", "two\n", "two")
	fixtureGit(t, w.host, "checkout", "-q", "-b", "feature")
	bundleCommit(t, w.host, "feature.txt", "feature\n", "feature work")
	fixtureGit(t, w.host, "checkout", "-q", "main")
	w.base = bundleCommit(t, w.host, "a.txt", "one\nthree\n", "three")
	fixtureWrite(t, filepath.Join(w.host, "a.txt"), "stashed\n")
	fixtureGit(t, w.host, "stash", "-q")
	fixtureWrite(t, filepath.Join(w.host, "dir/b.txt"), "staged\n")
	fixtureGit(t, w.host, "add", "dir/b.txt")
	fixtureWrite(t, filepath.Join(w.host, "a.txt"), "unstaged\n")
	fixtureWrite(t, filepath.Join(w.host, "untracked.txt"), "untracked\n")
	fixtureGit(t, root, "clone", "-q", "--no-local", w.host, w.guest)
	fixtureGit(t, w.guest, "checkout", "-q", "-b", "banger/vm1", w.base)
	repo, err := Inspect(context.Background(), w.host)
	if err != nil {
		t.Fatal(err)
	}
	w.repo = repo
	return w
}

// bundleMake makes a bundle in the guest of what args name.
func (w *bundleWorld) bundleMake(t *testing.T, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "guest.bundle")
	fixtureGit(t, w.guest, append([]string{"bundle", "create", "-q", path}, args...)...)
	return path
}

// bundleBranch makes the usual bundle: banger/vm1 less what base has.
func (w *bundleWorld) bundleBranch(t *testing.T) string {
	t.Helper()
	return w.bundleMake(t, "refs/heads/banger/vm1", "^"+w.base)
}

func (w *bundleWorld) request(bundle string) ImportRequest {
	return ImportRequest{Bundle: bundle, Branch: "banger/vm1", Base: w.base}
}

// bundleSnapshot is a repository's state: a hash of every file in the
// work tree and the git directory (objects included, so a new object
// shows) and every ref git lists.
type bundleSnapshot map[string]string

func bundleSnap(t *testing.T, dir string) bundleSnapshot {
	t.Helper()
	s := bundleSnapshot{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case d.IsDir():
			s["dir "+rel] = ""
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			s["link "+rel] = target
			return err
		}
		b, err := os.ReadFile(path)
		sum := sha256.Sum256(b)
		s["file "+rel] = hex.EncodeToString(sum[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(fixtureGit(t, dir, "for-each-ref", "--format=%(refname) %(objectname)"), "\n") {
		name, id, _ := strings.Cut(line, " ")
		s["ref "+name] = id
	}
	s["HEAD"] = fixtureGit(t, dir, "rev-parse", "HEAD")
	return s
}

// bundleChanges lists what differs from before to after: "+key" added,
// "-key" removed, "~key" changed.
func bundleChanges(before, after bundleSnapshot) []string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "-"+k)
		} else if w != v {
			d = append(d, "~"+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "+"+k)
		}
	}
	sort.Strings(d)
	return d
}

// bundleUnchanged fails the test when the host is not as before, or a
// quarantine is left.
func (w *bundleWorld) bundleUnchanged(t *testing.T, before bundleSnapshot) {
	t.Helper()
	if d := bundleChanges(before, bundleSnap(t, w.host)); len(d) > 0 {
		t.Errorf("the host repository changed:\n%s", strings.Join(d, "\n"))
	}
}

// bundleOnlyBranchMoved fails the test when anything changed in the
// host but banger/vm1, its reflog and new packs.
func (w *bundleWorld) bundleOnlyBranchMoved(t *testing.T, before bundleSnapshot) {
	t.Helper()
	for _, c := range bundleChanges(before, bundleSnap(t, w.host)) {
		switch {
		case c == "+ref refs/heads/banger/vm1" || c == "~ref refs/heads/banger/vm1":
		case c == "+file .git/refs/heads/banger/vm1" || c == "~file .git/refs/heads/banger/vm1":
		case c == "+file .git/logs/refs/heads/banger/vm1" || c == "~file .git/logs/refs/heads/banger/vm1":
		case c == "+dir .git/refs/heads/banger" || c == "+dir .git/logs/refs/heads/banger":
		case strings.HasPrefix(c, "+file .git/objects/pack/pack-"):
		default:
			t.Errorf("the host repository changed beyond banger/vm1: %s", c)
		}
	}
}

// bundleQuarantines lists the quarantines left in the host.
func (w *bundleWorld) bundleQuarantines(t *testing.T) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(w.repo.ObjectsDir(), "incoming-*"))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// bundleLog is base..tip in dir as "subject" lines, newest first.
func bundleLog(t *testing.T, dir, base, tip string) []string {
	t.Helper()
	out := fixtureGit(t, dir, "log", "--format=%s", base+".."+tip)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}
