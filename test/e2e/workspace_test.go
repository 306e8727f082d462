package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/internal/testutil/gitfixture"
)

// guestTree is gitfixture.Tree computed in the guest, for the repository
// at dir: "path mode sha" lines, symlinks as their target.
const guestTree = `cd %s && find . -name .git -prune -o \( -type f -o -type l \) -print | sed 's|^\./||' | while read -r p; do
if [ -L "$p" ]; then echo "$p symlink $(readlink "$p")"; else m=644; [ -x "$p" ] && m=755; echo "$p $m $(sha256sum < "$p" | cut -c1-16)"; fi
done`

// lines splits command output into sorted, non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// hostRepoState is what a harvest must leave as it is in the host
// repository: HEAD, status, the index, every ref but banger/*, the
// stash, the work tree's files.
func hostRepoState(t *testing.T, repo string) string {
	t.Helper()
	index, _ := os.ReadFile(filepath.Join(repo, ".git", "index"))
	return strings.Join(append([]string{
		gitfixture.Git(t, repo, "rev-parse", "HEAD"), gitfixture.Git(t, repo, "symbolic-ref", "HEAD"),
		gitfixture.Git(t, repo, "status", "--porcelain"), gitfixture.Git(t, repo, "stash", "list"),
		notBanger(gitfixture.Git(t, repo, "for-each-ref", "--format=%(refname) %(objectname)")),
		string(index),
	}, gitfixture.Tree(t, repo)...), "\n")
}

// checkOverlay checks that the guest's repository at /root/proj shows
// what the host's does: git status, the file tree, the branch, and no
// ignored file.
func checkOverlay(t *testing.T, e *vmEnv, vm, repo string) {
	t.Helper()
	if got, want := e.exec(vm, "cd /root/proj && git status --porcelain"), gitfixture.Git(t, repo, "status", "--porcelain")+"\n"; got != want {
		t.Errorf("%s: guest git status\n%s\nwant the host's\n%s", vm, got, want)
	}
	got := lines(e.exec(vm, strings.ReplaceAll(guestTree, "%s", "/root/proj")))
	if want := gitfixture.Tree(t, repo, ".env", "build"); !slices.Equal(got, want) {
		t.Errorf("%s: guest tree\n%s\nwant\n%s", vm, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b := strings.TrimSpace(e.exec(vm, "cd /root/proj && git symbolic-ref --short HEAD")); b != "banger/"+vm {
		t.Errorf("%s: guest branch %q", vm, b)
	}
	if out := e.exec(vm, "cd /root/proj && git config user.email; cat assets/big.bin; git -C lib/sub rev-parse HEAD"); !strings.HasPrefix(out, "fixture@example.com\n"+gitfixture.LFSPointer) ||
		!strings.HasSuffix(out, gitfixture.Git(t, repo, "rev-parse", "HEAD:lib/sub")+"\n") {
		t.Errorf("%s: identity, LFS pointer, submodule:\n%s", vm, out)
	}
}

// TestWorkspaceModes prepares the fixture in each mode — two at create
// (on the work disk), one into a running VM (over SSH) — and checks
// what each promises.
func TestWorkspaceModes(t *testing.T) {
	gitfixture.Isolate(t)
	e := newVMEnv(t, "")
	repo := gitfixture.New(t, t.TempDir(), "proj")
	hostCommits := gitfixture.Git(t, repo, "rev-list", "--count", "HEAD")

	e.must("vm", "create", "--name", "shal", "--workspace", repo)
	checkOverlay(t, e, "shal", repo)
	if out := e.exec("shal", "cd /root/proj && git rev-list --count HEAD && git rev-parse --is-shallow-repository && test ! -e .env && echo no-env"); out != "1\ntrue\nno-env\n" {
		t.Errorf("shallow_overlay: depth, shallow, .env:\n%s", out)
	}

	e.must("vm", "create", "--name", "full")
	r := e.must("workspace", "prepare", "full", repo, "--mode", "full_copy")
	if !strings.Contains(r.stdout, "at /root/proj on branch banger/full (full_copy") {
		t.Errorf("prepare said %q", r.stdout)
	}
	checkOverlay(t, e, "full", repo)
	if out := e.exec("full", "cd /root/proj && git rev-list --count HEAD && git branch --format='%(refname:short)' | sort | tr '\\n' ' ' && git tag"); out != hostCommits+"\nbanger/full feature main v1\n" {
		t.Errorf("full_copy: history, branches, tags:\n%s", out)
	}

	e.must("vm", "create", "--name", "meta", "--workspace", repo, "--workspace-mode", "metadata_only")
	if out := e.exec("meta", "cd /root/proj && ls -A && git status --porcelain && git rev-list --count HEAD && git symbolic-ref --short HEAD"); out != ".git\n"+hostCommits+"\nbanger/meta\n" {
		t.Errorf("metadata_only: files, status, history, branch:\n%s", out)
	}
	if out := e.exec("meta", "cd /root/proj && git sparse-checkout set src >/dev/null 2>&1; ls src"); out != "main.go\n" {
		t.Errorf("metadata_only: a sparse checkout of src gave %q", out)
	}

	show := e.must("vm", "show", "meta").stdout
	for _, want := range []string{"repository ", repo, "guest path ", "/root/proj", "metadata_only", "banger/meta (base "} {
		if !strings.Contains(show, want) {
			t.Errorf("vm show lacks %q:\n%s", want, show)
		}
	}
}

// notBanger drops the banger/* branches from for-each-ref's lines.
func notBanger(refs string) string {
	var keep []string
	for _, l := range strings.Split(refs, "\n") {
		if !strings.HasPrefix(l, "refs/heads/banger/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
