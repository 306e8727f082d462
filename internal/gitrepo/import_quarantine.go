package gitrepo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/errdefs"
)

// impEnv is added to every git an import runs: replace refs of the
// host's do not change what the guest's commits are.
var impEnv = []string{"GIT_NO_REPLACE_OBJECTS=1"}

// impConfig goes before every git command that reads the guest's
// objects or writes the ref: no hook runs (hooksPath /dev/null holds
// none, so neither a reference-transaction hook nor any other), every
// object is checked as it is received, the objects stay one pack the
// import can move, and nothing runs in the background.
var impConfig = []string{
	"-c", "core.hooksPath=/dev/null",
	"-c", "fetch.fsckObjects=true",
	"-c", "transfer.fsckObjects=true",
	"-c", "fetch.unpackLimit=1",
	"-c", "transfer.unpackLimit=1",
	"-c", "gc.auto=0",
	"-c", "maintenance.auto=false",
	"-c", "fetch.writeCommitGraph=false",
}

// impQuarantine is an object directory inside the host's, as git's
// receive-pack makes for a push: git run with its env writes the
// guest's objects there and sees the host's through it, and nothing in
// it is part of the host repository until commit moves it.
type impQuarantine struct {
	repo Repo
	dir  string
	env  []string
}

func impNewQuarantine(repo Repo) (*impQuarantine, error) {
	dir, err := os.MkdirTemp(repo.ObjectsDir(), "incoming-")
	if err != nil {
		return nil, fmt.Errorf("make a quarantine for the guest's objects in %s: %w", repo.ObjectsDir(), err)
	}
	env := append(append([]string{}, impEnv...),
		"GIT_OBJECT_DIRECTORY="+dir,
		"GIT_ALTERNATE_OBJECT_DIRECTORIES="+impQuoteAlternate(repo.ObjectsDir()),
		"GIT_QUARANTINE_PATH="+dir,
	)
	return &impQuarantine{repo: repo, dir: dir, env: env}, nil
}

// impQuoteAlternate quotes a path for GIT_ALTERNATE_OBJECT_DIRECTORIES,
// whose entries are separated by colons unless C-quoted.
func impQuoteAlternate(p string) string {
	if !strings.ContainsAny(p, ":\"\\") {
		return p
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(p) + `"`
}

// remove deletes the quarantine and whatever is still in it.
func (q *impQuarantine) remove() {
	_ = os.RemoveAll(q.dir)
}

func (q *impQuarantine) git(ctx context.Context, args ...string) ([]byte, error) {
	return Isolated(ctx, q.repo.Root, q.env, nil, append(append([]string{}, impConfig...), args...)...)
}

// fetch brings the objects of ref (and no ref) from the bundle into
// the quarantine. No destination is given, so no ref is written, and
// GIT_QUARANTINE_PATH makes git refuse to write one anyway.
func (q *impQuarantine) fetch(ctx context.Context, bundle, ref string) error {
	_, err := q.git(ctx, "fetch", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance",
		"--no-recurse-submodules", "-q", bundle, ref)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return invalid("fetch from the guest's bundle %s: %w; nothing harvested", bundle, err)
	}
	return nil
}

// verify checks what the quarantine holds before any of it is moved:
// every object is well formed, tip is a commit whose history is all
// there and descends from the workspace's base, and the host branch
// (at old) is an ancestor of tip unless the request forces.
func (q *impQuarantine) verify(ctx context.Context, req ImportRequest, tip, old string) error {
	packs, err := q.packs()
	if err != nil {
		return err
	}
	for i, p := range packs {
		if err := q.fsck(ctx, p, i); err != nil {
			return err
		}
	}
	typ, err := q.git(ctx, "cat-file", "-t", tip)
	if err != nil {
		return q.failed(ctx, invalid("the guest's bundle does not hold %s's commit %s: %w; nothing harvested", req.Branch, tip[:12], err))
	}
	if t := strings.TrimSpace(string(typ)); t != "commit" {
		return invalid("the guest's %s points to a %s, not a commit; nothing harvested", req.Branch, t)
	}
	if _, err := q.git(ctx, "rev-list", "--objects", "--quiet", tip, "--not", "--all"); err != nil {
		return q.failed(ctx, invalid("the guest's %s is missing objects: %w; nothing harvested", req.Branch, err))
	}
	ok, err := q.isAncestor(ctx, req.Base, tip)
	if err != nil {
		return err
	}
	if !ok {
		return invalid("the guest rewrote its history: %s does not descend from the workspace's base %s; nothing harvested", req.Branch, req.Base[:12])
	}
	if old == "" || req.Force {
		return nil
	}
	if ok, err = q.isAncestor(ctx, old, tip); err != nil {
		return err
	}
	if !ok {
		return errdefs.Mark(errdefs.ErrConflict, fmt.Errorf(
			"the host's branch %s has commits the guest's does not (%s is not an ancestor of the guest's %s); nothing harvested: merge or rename the host's branch, or harvest with --force to replace it",
			req.Branch, old[:12], tip[:12]))
	}
	return nil
}

// isAncestor says whether a is reachable from b: whether no commit is
// reachable from a but not from b. (merge-base --is-ancestor tells the
// same by its exit status, which Isolated does not return.)
func (q *impQuarantine) isAncestor(ctx context.Context, a, b string) (bool, error) {
	out, err := q.git(ctx, "rev-list", "-n", "1", a, "^"+b)
	if err != nil {
		return false, q.failed(ctx, fmt.Errorf("compare %s with %s: %w", a[:12], b[:12], err))
	}
	return len(strings.TrimSpace(string(out))) == 0, nil
}

// failed is err, or ctx's error when ctx ended, which is what made git
// fail then.
func (q *impQuarantine) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// packs lists the quarantine's packs. Git writes a bundle's objects as
// one pack; loose objects in the quarantine would not be moved, so
// they fail the import rather than leave a branch with missing objects.
func (q *impQuarantine) packs() ([]string, error) {
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("read the quarantine %s: %w", q.dir, err)
	}
	for _, e := range entries {
		if n := e.Name(); len(n) == 2 && e.IsDir() && bundleIsID(n, 2) {
			if sub, _ := os.ReadDir(filepath.Join(q.dir, n)); len(sub) > 0 {
				return nil, fmt.Errorf("git wrote loose objects into the quarantine %s (banger moves only packs); nothing harvested", q.dir)
			}
		}
	}
	packs, err := filepath.Glob(filepath.Join(q.dir, "pack", "pack-*.pack"))
	if err != nil {
		return nil, err
	}
	return packs, nil
}

// fsck indexes pack again with --strict, which checks every object in
// it as fsck does and that every object it names exists: git 2.39's
// fetch from a bundle does not check objects, whatever
// fetch.fsckObjects says (git 2.46 made it).
func (q *impQuarantine) fsck(ctx context.Context, pack string, i int) error {
	idx := filepath.Join(q.dir, fmt.Sprintf("verify-%d.idx", i))
	defer os.Remove(idx)
	if _, err := q.git(ctx, "index-pack", "--strict", "--no-rev-index", "-o", idx, pack); err != nil {
		return q.failed(ctx, invalid("the guest's bundle holds a malformed object: %w; nothing harvested", err))
	}
	return nil
}
