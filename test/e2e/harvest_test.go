package e2e

import (
	"bytes"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/testutil/gitfixture"
)

// TestWorkspaceHarvest commits in the guest and harvests: the host
// branch holds exactly those commits on the base, and nothing else of
// the host's changes; again is a no-op; a diverged host branch is
// refused without --force.
func TestWorkspaceHarvest(t *testing.T) {
	gitfixture.Isolate(t)
	e := newVMEnv(t, "")
	repo := gitfixture.New(t, t.TempDir(), "proj")
	base := gitfixture.Git(t, repo, "rev-parse", "HEAD")
	e.must("vm", "create", "--name", "dev", "--workspace", repo)
	before := hostRepoState(t, repo)

	e.exec("dev", "cd /root/proj && echo a > a && git add a && git commit -qm one && echo b > b && git add b && git commit -qm two")
	r := e.must("workspace", "harvest", "dev")
	if !strings.Contains(r.stdout, "harvested 2 commits onto branch banger/dev (base "+base[:7]+")") {
		t.Errorf("harvest said:\n%s", r.stdout)
	}
	if got := gitfixture.Git(t, repo, "log", "--format=%s", base+"..banger/dev"); got != "two\none" {
		t.Errorf("host banger/dev past the base: %q, want two, one", got)
	}
	if after := hostRepoState(t, repo); after != before {
		t.Errorf("the harvest changed the host repository beyond banger/dev:\nbefore\n%s\nafter\n%s", before, after)
	}
	if r := e.must("workspace", "harvest", "dev"); !strings.Contains(r.stdout, "nothing new") {
		t.Errorf("harvest again said %q", r.stdout)
	}

	// The host moves its banger/dev on its own; the guest too: refused,
	// then replaced with --force.
	tree := gitfixture.Git(t, repo, "rev-parse", "banger/dev^{tree}")
	mine := gitfixture.Git(t, repo, "commit-tree", tree, "-p", "banger/dev", "-m", "host's own")
	gitfixture.Git(t, repo, "update-ref", "refs/heads/banger/dev", mine)
	e.exec("dev", "cd /root/proj && echo c > c && git add c && git commit -qm three")
	r = e.banger("workspace", "harvest", "dev")
	if r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("diverged harvest: exit %d, %s", r.code, r.stderr)
	}
	if got := gitfixture.Git(t, repo, "rev-parse", "banger/dev"); got != mine {
		t.Errorf("a refused harvest moved banger/dev to %s", got)
	}
	e.must("workspace", "harvest", "--force", "dev")
	if got := gitfixture.Git(t, repo, "log", "-1", "--format=%s", "banger/dev"); got != "three" {
		t.Errorf("after --force banger/dev is at %q", got)
	}
}

// hostileGit is a git for the guest that answers `bundle create` with
// what /root/.hostile says, and runs the real git for the rest.
const hostileGit = `#!/bin/sh
if [ "$1" = bundle ] && [ "$2" = create ]; then
	case "$(cat /root/.hostile)" in
	main) exec /usr/bin/git bundle create -q - refs/heads/main ;;
	huge) exec head -c 2G /dev/zero ;;
	corrupt) /usr/bin/git bundle create -q /tmp/b "$5" "$6" && size=$(stat -c %s /tmp/b) &&
		printf 'garbage-garbage-garbage' | dd of=/tmp/b bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null && exec cat /tmp/b ;;
	esac
fi
exec /usr/bin/git "$@"
`

// TestWorkspaceHostileGuest: whatever a guest hands back — a bundle of
// another branch, one far too big, a corrupt one, an object fsck
// rejects, hooks of its own — the host repository is unchanged.
func TestWorkspaceHostileGuest(t *testing.T) {
	gitfixture.Isolate(t)
	e := newVMEnv(t, "harvest_max_bundle_size = \"16M\"\n")
	repo := gitfixture.New(t, t.TempDir(), "proj")
	e.must("vm", "create", "--name", "evil", "--workspace", repo, "--workspace-mode", "full_copy")
	e.exec("evil", "cd /root/proj && git commit -qm guest --allow-empty && for h in post-commit pre-push reference-transaction post-checkout; do printf '#!/bin/sh\\ntouch /tmp/hook-ran\\n' > .git/hooks/$h; chmod +x .git/hooks/$h; done")
	e.exec("evil", "cat > /usr/local/bin/git <<'EOF'\n"+hostileGit+"EOF\nchmod +x /usr/local/bin/git")
	before := hostRepoState(t, repo)
	for mode, want := range map[string]string{
		"main":    "has no branch banger/evil",
		"huge":    "larger than the 16.0 MiB a harvest takes",
		"corrupt": "",
	} {
		e.exec("evil", "echo "+mode+" > /root/.hostile")
		r := e.banger("workspace", "harvest", "evil")
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s bundle: exit %d, stderr %q; want a failure saying %q", mode, r.code, r.stderr, want)
		}
		if after := hostRepoState(t, repo); after != before {
			t.Errorf("%s bundle changed the host repository", mode)
		}
	}
	e.exec("evil", "rm /usr/local/bin/git")
	// A commit fsck refuses (its dates are not dates), on the branch.
	e.exec("evil", `cd /root/proj && c=$(printf 'tree %s\nparent %s\nauthor A <a@b> notadate +0000\ncommitter A <a@b> notadate +0000\n\nbad\n' $(git rev-parse 'HEAD^{tree}') $(git rev-parse HEAD) | git hash-object -t commit -w --literally --stdin) && git update-ref refs/heads/banger/evil $c`)
	if r := e.banger("workspace", "harvest", "evil"); r.code == 0 {
		t.Errorf("a bundle with a malformed commit was harvested:\n%s", r.stdout)
	}
	if after := hostRepoState(t, repo); after != before {
		t.Errorf("the malformed commit changed the host repository")
	}
	if out := gitfixture.Git(t, repo, "branch", "--list", "banger/*"); out != "" {
		t.Errorf("host has %q after hostile harvests", out)
	}
}

// TestRun is banger run as a script or an agent uses it: the command's
// exit status is banger's, its commit comes back as the branch, and the
// VM is gone. A path that is no repository, a repository with no
// commits and a bare one are refused before anything is made.
func TestRun(t *testing.T) {
	gitfixture.Isolate(t)
	e := newVMEnv(t, "")
	dir := t.TempDir()
	repo := gitfixture.New(t, dir, "proj")
	r := e.banger("run", repo, "--name", "runner", "--", "sh", "-c", "echo hi > f && git add f && git commit -qm f && exit 3")
	if r.code != 3 {
		t.Fatalf("banger run: exit %d, want the command's 3\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := gitfixture.Git(t, repo, "log", "-1", "--format=%s", "banger/runner"); got != "f" {
		t.Errorf("banger/runner is at %q, want the guest's commit f", got)
	}
	for _, want := range []string{"harvested 1 commit onto branch banger/runner", "removed vm runner (--keep keeps it)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("banger run's stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r := e.banger("vm", "show", "runner"); r.code == 0 {
		t.Errorf("vm runner is still there after banger run")
	}

	checkRunTerminated(t, e, repo)

	empty := dir + "/empty"
	gitfixture.Git(t, dir, "init", "-q", empty)
	bare := dir + "/bare.git"
	gitfixture.Git(t, dir, "init", "-q", "--bare", bare)
	for path, want := range map[string]string{
		t.TempDir(): "is not inside a git work tree",
		empty:       "has no commits yet",
		bare:        "is a bare git repository",
	} {
		r := e.banger("run", path, "--", "true")
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("banger run %s: exit %d, %q; want %q", path, r.code, r.stderr, want)
		}
	}
	if out := e.must("vm", "ls").stdout; strings.Count(out, "\n") > 1 {
		t.Errorf("refused runs left VMs:\n%s", out)
	}
}

// checkRunTerminated: banger run sent SIGTERM while its command runs
// ends the command in the guest first — which, trapping it, commits
// once more — then harvests both commits, removes the VM, and exits
// 128+15.
func checkRunTerminated(t *testing.T, e *vmEnv, repo string) {
	t.Helper()
	cmd := e.ns.Cmd(filepath.Join(e.bin, "banger"), "run", repo, "--name", "termed", "--",
		"sh", "-c", "echo t > t && git add t && git commit -qm before-term || exit 1; trap 'git commit -q --allow-empty -m on-term; exit 0' TERM; touch /tmp/committed; sleep 600 & wait")
	cmd.Env = e.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if r := e.banger("vm", "exec", "termed", "--", "test", "-e", "/tmp/committed"); r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the guest command never committed; banger run said:\n%s", stderr.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 128+15 {
		t.Errorf("banger run sent SIGTERM exited %d, want 143", code)
	}
	if got := gitfixture.Git(t, repo, "log", "-2", "--format=%s", "banger/termed"); got != "on-term\nbefore-term" {
		t.Errorf("after SIGTERM banger/termed holds %q, want the commit made before it and the one the command made as it ended\n%s", got, stderr.String())
	}
	if !strings.Contains(stderr.String(), "removed vm termed") {
		t.Errorf("banger run did not remove its VM after a harvest on SIGTERM:\n%s", stderr.String())
	}
}
