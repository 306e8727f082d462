package gitrepo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"banger/internal/errdefs"
)

// TestImportTwoCommits: the guest's two commits become the host's
// banger/vm1 on top of base, listed newest first, and nothing else in
// the host changes: not HEAD, the index, the work tree, the stash, the
// config, the other refs; no FETCH_HEAD, no quarantine left.
func TestImportTwoCommits(t *testing.T) {
	w := bundleNewWorld(t)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	c2 := bundleCommit(t, w.guest, "guest.txt", "g2\n", "guest two")
	bundle := w.bundleBranch(t)
	before := bundleSnap(t, w.host)

	res, err := Import(context.Background(), w.repo, w.request(bundle))
	if err != nil {
		t.Fatal(err)
	}
	if res.Old != "" || res.New != c2 || res.NoOp || res.Truncated {
		t.Errorf("result %+v; want Old \"\", New %s", res, c2)
	}
	want := []Commit{{c2, "guest two"}, {c1, "guest one"}}
	if !slices.Equal(res.Commits, want) {
		t.Errorf("Commits %v; want %v", res.Commits, want)
	}
	if got := fixtureGit(t, w.host, "rev-parse", "refs/heads/banger/vm1"); got != c2 {
		t.Errorf("host banger/vm1 is %s; want %s", got, c2)
	}
	if got := bundleLog(t, w.host, w.base, "banger/vm1"); !slices.Equal(got, []string{"guest two", "guest one"}) {
		t.Errorf("host base..banger/vm1 is %q", got)
	}
	if got := fixtureGit(t, w.host, "show", "banger/vm1:guest.txt"); got != "g2" {
		t.Errorf("guest.txt on the host's branch is %q", got)
	}
	w.bundleOnlyBranchMoved(t, before)
	if left := w.bundleQuarantines(t); len(left) > 0 {
		t.Errorf("quarantine left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(w.repo.GitDir, "FETCH_HEAD")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FETCH_HEAD written (%v)", err)
	}
	if out := fixtureGit(t, w.host, "fsck", "--no-dangling", "--strict"); strings.Contains(out, "error") {
		t.Errorf("host fsck after the import: %s", out)
	}
	if got := fixtureGit(t, w.host, "reflog", "-1", "--format=%gs", "refs/heads/banger/vm1"); got != "banger harvest" {
		t.Errorf("reflog says %q; want banger harvest", got)
	}
}

// TestImportAgainIsNoOp: the same bundle twice changes nothing the
// second time and says so; a bundle whose tip is base does not either.
func TestImportAgainIsNoOp(t *testing.T) {
	w := bundleNewWorld(t)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	bundle := w.bundleBranch(t)
	if _, err := Import(context.Background(), w.repo, w.request(bundle)); err != nil {
		t.Fatal(err)
	}
	before := bundleSnap(t, w.host)
	res, err := Import(context.Background(), w.repo, w.request(bundle))
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoOp || res.Old != c1 || res.New != c1 || len(res.Commits) != 1 {
		t.Errorf("second import %+v; want a no-op at %s listing one commit", res, c1)
	}
	w.bundleUnchanged(t, before)

	w2 := bundleNewWorld(t)
	fixtureGit(t, w2.guest, "tag", "other")
	atBase := w2.bundleMake(t, "refs/heads/banger/vm1", "refs/tags/other")
	before = bundleSnap(t, w2.host)
	res, err = Import(context.Background(), w2.repo, w2.request(atBase))
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoOp || res.Old != "" || res.New != "" || len(res.Commits) != 0 {
		t.Errorf("import of base %+v; want a no-op creating nothing", res)
	}
	w2.bundleUnchanged(t, before)
}

// TestImportFastForward: a later bundle moves the branch on.
func TestImportFastForward(t *testing.T) {
	w := bundleNewWorld(t)
	bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	c2 := bundleCommit(t, w.guest, "guest.txt", "g2\n", "guest two")
	if _, err := Import(context.Background(), w.repo, w.request(w.bundleBranch(t))); err != nil {
		t.Fatal(err)
	}
	c3 := bundleCommit(t, w.guest, "guest.txt", "g3\n", "guest three")
	bundle := w.bundleMake(t, "refs/heads/banger/vm1", "^"+c2)
	before := bundleSnap(t, w.host)
	res, err := Import(context.Background(), w.repo, w.request(bundle))
	if err != nil {
		t.Fatal(err)
	}
	if res.Old != c2 || res.New != c3 || res.NoOp || len(res.Commits) != 3 || res.Commits[0].Hash != c3 {
		t.Errorf("result %+v; want %s -> %s with three commits", res, c2, c3)
	}
	if got := fixtureGit(t, w.host, "rev-parse", "banger/vm1"); got != c3 {
		t.Errorf("host banger/vm1 is %s; want %s", got, c3)
	}
	w.bundleOnlyBranchMoved(t, before)
}

// TestImportDiverged: a host branch with commits the guest's lacks is
// not replaced (a conflict, nothing changed) unless forced.
func TestImportDiverged(t *testing.T) {
	w := bundleNewWorld(t)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	if _, err := Import(context.Background(), w.repo, w.request(w.bundleBranch(t))); err != nil {
		t.Fatal(err)
	}
	hostTip := fixtureGit(t, w.host, "commit-tree", "-p", c1, "-m", "host work", c1+"^{tree}")
	fixtureGit(t, w.host, "update-ref", "refs/heads/banger/vm1", hostTip)
	c2 := bundleCommit(t, w.guest, "guest.txt", "g2\n", "guest two")
	bundle := w.bundleMake(t, "refs/heads/banger/vm1", "^"+c1)
	before := bundleSnap(t, w.host)

	_, err := Import(context.Background(), w.repo, w.request(bundle))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("diverged import: %v; want a conflict naming --force", err)
	}
	w.bundleUnchanged(t, before)
	if left := w.bundleQuarantines(t); len(left) > 0 {
		t.Errorf("quarantine left: %v", left)
	}

	req := w.request(bundle)
	req.Force = true
	res, err := Import(context.Background(), w.repo, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Old != hostTip || res.New != c2 {
		t.Errorf("forced result %+v; want %s -> %s", res, hostTip, c2)
	}
	if got := fixtureGit(t, w.host, "rev-parse", "banger/vm1"); got != c2 {
		t.Errorf("host banger/vm1 is %s; want %s", got, c2)
	}
	w.bundleOnlyBranchMoved(t, before)
}

// TestImportIgnoresOtherRefs: a bundle that carries main as well moves
// banger/vm1 only.
func TestImportIgnoresOtherRefs(t *testing.T) {
	w := bundleNewWorld(t)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	fixtureGit(t, w.guest, "checkout", "-q", "main")
	bundleCommit(t, w.guest, "a.txt", "evil\n", "evil main")
	fixtureGit(t, w.guest, "checkout", "-q", "banger/vm1")
	bundle := w.bundleMake(t, "refs/heads/banger/vm1", "refs/heads/main", "^"+w.base)
	before := bundleSnap(t, w.host)
	if _, err := Import(context.Background(), w.repo, w.request(bundle)); err != nil {
		t.Fatal(err)
	}
	if got := fixtureGit(t, w.host, "rev-parse", "main"); got != w.base {
		t.Errorf("host main moved to %s", got)
	}
	if got := fixtureGit(t, w.host, "rev-parse", "banger/vm1"); got != c1 {
		t.Errorf("host banger/vm1 is %s; want %s", got, c1)
	}
	w.bundleOnlyBranchMoved(t, before)
}

// TestImportCheckedOut: a branch checked out in a work tree of the
// host is not moved under it.
func TestImportCheckedOut(t *testing.T) {
	w := bundleNewWorld(t)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	if _, err := Import(context.Background(), w.repo, w.request(w.bundleBranch(t))); err != nil {
		t.Fatal(err)
	}
	fixtureGit(t, w.host, "worktree", "add", "-q", filepath.Join(t.TempDir(), "wt"), "banger/vm1")
	bundleCommit(t, w.guest, "guest.txt", "g2\n", "guest two")
	bundle := w.bundleMake(t, "refs/heads/banger/vm1", "^"+c1)
	before := bundleSnap(t, w.host)
	_, err := Import(context.Background(), w.repo, w.request(bundle))
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "checked out") {
		t.Fatalf("import into a checked-out branch: %v; want a conflict", err)
	}
	w.bundleUnchanged(t, before)
}

// TestImportHooksNeverRun: the host's hooks run neither on a harvest
// nor on a refused one (and would run for a plain git update-ref).
func TestImportHooksNeverRun(t *testing.T) {
	w := bundleNewWorld(t)
	marker := filepath.Join(t.TempDir(), "hook-ran")
	for _, hook := range []string{"reference-transaction", "post-merge", "post-checkout", "pre-auto-gc", "post-index-change"} {
		script := "#!/bin/sh\necho " + hook + " >> '" + marker + "'\n"
		if err := os.WriteFile(filepath.Join(w.repo.GitDir, "hooks", hook), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	if _, err := Import(context.Background(), w.repo, w.request(w.bundleBranch(t))); err != nil {
		t.Fatal(err)
	}
	fixtureGit(t, w.guest, "reset", "-q", "--hard", w.base+"~1")
	bundleCommit(t, w.guest, "guest.txt", "rewritten\n", "rewritten")
	if _, err := Import(context.Background(), w.repo, w.request(w.bundleMake(t, "refs/heads/banger/vm1", "^"+w.base+"~1"))); err == nil {
		t.Fatal("a rewritten history was harvested")
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("a host hook ran: %s", b)
	}
	fixtureGit(t, w.host, "update-ref", "refs/heads/hook-check", w.base)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the reference-transaction hook does not run for git itself either, so the test proves nothing: %v", err)
	}
}

// TestImportCancelled: an import cancelled at any point before its
// objects move fails and leaves the host as it was, with no
// quarantine; past that point it completes.
func TestImportCancelled(t *testing.T) {
	w := bundleNewWorld(t)
	bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	bundle := w.bundleBranch(t)
	before := bundleSnap(t, w.host)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Import(ctx, w.repo, w.request(bundle)); !errors.Is(err, context.Canceled) {
		t.Fatalf("import with a cancelled context: %v; want context.Canceled", err)
	}
	w.bundleUnchanged(t, before)

	failed := 0
	for after := int32(1); ; after++ {
		if after > 500 {
			t.Fatal("the import never completed")
		}
		ctx := bundleCancelAfter(after)
		_, err := Import(ctx, w.repo, w.request(bundle))
		if left := w.bundleQuarantines(t); len(left) > 0 {
			t.Fatalf("cancelled at the %d-th wait: quarantine left: %v", after, left)
		}
		if err == nil {
			break
		}
		failed++
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled at the %d-th wait: %v; want context.Canceled", after, err)
		}
		w.bundleUnchanged(t, before)
	}
	// Each git run waits on the context; an import runs more than ten
	// before it moves anything.
	t.Logf("%d cancellation points failed the import", failed)
	if failed < 10 {
		t.Errorf("only %d cancellation points failed the import", failed)
	}
	w.bundleOnlyBranchMoved(t, before)
}

// bundleCancelAfter is a context cancelled when it is waited on for
// the n-th time (exec waits on it once or twice per git run).
func bundleCancelAfter(n int32) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	return &bundleCountingCtx{Context: ctx, cancel: cancel, after: n}
}

type bundleCountingCtx struct {
	context.Context
	cancel context.CancelFunc
	n      atomic.Int32
	after  int32
}

func (c *bundleCountingCtx) Done() <-chan struct{} {
	if c.n.Add(1) >= c.after {
		c.cancel()
	}
	return c.Context.Done()
}

// TestImportRefMovedIsTakenBack: when the host's branch changes after
// the checks, the update fails on its old value and the packs already
// moved into the host are taken out again.
func TestImportRefMovedIsTakenBack(t *testing.T) {
	w := bundleNewWorld(t)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	bundle := w.bundleBranch(t)
	ctx := context.Background()
	q, err := impNewQuarantine(w.repo)
	if err != nil {
		t.Fatal(err)
	}
	defer q.remove()
	if err := q.fetch(ctx, bundle, "refs/heads/banger/vm1"); err != nil {
		t.Fatal(err)
	}
	if err := q.verify(ctx, w.request(bundle), c1, ""); err != nil {
		t.Fatal(err)
	}
	fixtureGit(t, w.host, "update-ref", "refs/heads/banger/vm1", w.base)
	before := bundleSnap(t, w.host)
	if err := q.commit(ctx, "refs/heads/banger/vm1", c1, "", 40); err == nil {
		t.Fatal("the update succeeded over a branch that appeared meanwhile")
	}
	q.remove()
	for _, c := range bundleChanges(before, bundleSnap(t, w.host)) {
		if !strings.Contains(c, "objects/incoming-") {
			t.Errorf("the host repository changed: %s", c)
		}
	}
	if err := exec.Command("git", "-C", w.host, "cat-file", "-e", c1).Run(); err == nil {
		t.Errorf("the guest's commit %s stayed in the host", c1)
	}
}

// TestImportOddPath: a host repository whose path has a colon (which
// separates GIT_ALTERNATE_OBJECT_DIRECTORIES) and a quote in it imports
// as any other.
func TestImportOddPath(t *testing.T) {
	root := filepath.Join(t.TempDir(), `a:b"c`)
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	w := bundleNewWorldIn(t, root)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	before := bundleSnap(t, w.host)
	res, err := Import(context.Background(), w.repo, w.request(w.bundleBranch(t)))
	if err != nil || res.New != c1 {
		t.Fatalf("import into %s: %+v, %v", w.host, res, err)
	}
	w.bundleOnlyBranchMoved(t, before)
	if got := impQuoteAlternate(`/x/a:b"c\\d`); got != `"/x/a:b\"c\\\\d"` {
		t.Errorf("quoted %s", got)
	}
}

// TestImportAfterBranchDeleted: a bundle imported before, its branch
// deleted in the host since, imports again; its pack, in the host
// already, is left as it is.
func TestImportAfterBranchDeleted(t *testing.T) {
	w := bundleNewWorld(t)
	c1 := bundleCommit(t, w.guest, "guest.txt", "g1\n", "guest one")
	bundle := w.bundleBranch(t)
	if _, err := Import(context.Background(), w.repo, w.request(bundle)); err != nil {
		t.Fatal(err)
	}
	fixtureGit(t, w.host, "branch", "-q", "-D", "banger/vm1")
	before := bundleSnap(t, w.host)
	res, err := Import(context.Background(), w.repo, w.request(bundle))
	if err != nil || res.Old != "" || res.New != c1 || res.NoOp {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	for _, c := range bundleChanges(before, bundleSnap(t, w.host)) {
		if strings.Contains(c, "objects/") {
			t.Errorf("objects changed though the host had them all: %s", c)
		}
	}
	w.bundleOnlyBranchMoved(t, before)
}
