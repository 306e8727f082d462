package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/errdefs"
)

// impCommitTimeout bounds the last step of an import, which runs on
// when the request is cancelled: once objects move into the host, the
// ref is updated or they are taken back out, not left half done.
const impCommitTimeout = 2 * time.Minute

// commit moves the quarantine's packs into the host's object store and
// updates ref from old ("" when it does not exist) to tip, checking
// old; when the ref cannot be updated the packs are taken out again.
func (q *impQuarantine) commit(ctx context.Context, ref, tip, old string, hexLen int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), impCommitTimeout)
	defer cancel()
	packs, err := q.packs()
	if err != nil {
		return err
	}
	moved, err := q.migrate(packs)
	if err != nil {
		impTakeBack(moved)
		return err
	}
	if old == "" {
		old = strings.Repeat("0", hexLen)
	}
	env := append([]string{}, impEnv...)
	if q.repo.UserName != "" && q.repo.UserEmail != "" {
		env = append(env, "GIT_COMMITTER_NAME="+q.repo.UserName, "GIT_COMMITTER_EMAIL="+q.repo.UserEmail)
	}
	_, err = Isolated(ctx, q.repo.Root, env, nil, "-c", "core.hooksPath=/dev/null",
		"update-ref", "-m", "banger harvest", ref, tip, old)
	if err != nil {
		impTakeBack(moved)
		return fmt.Errorf("update %s in %s (did it change during the harvest? try again): %w", ref, q.repo.Root, err)
	}
	return nil
}

// migrate moves each pack into the host's objects/pack: the .pack
// first, then its .rev, the .idx last, since git sees a pack by its
// index. Each file is synced before it is linked in, the directory
// after. A file the host has already (the same name is the same
// content) stays the host's. migrate returns the files it added.
func (q *impQuarantine) migrate(packs []string) ([]string, error) {
	dst := filepath.Join(q.repo.ObjectsDir(), "pack")
	var moved []string
	for _, p := range packs {
		stem := strings.TrimSuffix(p, ".pack")
		if _, err := os.Lstat(stem + ".idx"); err != nil {
			return moved, fmt.Errorf("the quarantined pack %s has no index: %w", filepath.Base(p), err)
		}
		for _, ext := range []string{".pack", ".rev", ".idx"} {
			src := stem + ext
			if _, err := os.Lstat(src); ext == ".rev" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			to := filepath.Join(dst, filepath.Base(src))
			added, err := impMoveFile(src, to)
			if err != nil {
				return moved, err
			}
			if added {
				moved = append(moved, to)
			}
		}
	}
	if err := impSync(dst); err != nil {
		return moved, err
	}
	return moved, nil
}

// impMoveFile links src in at dst and removes src; it reports false
// when dst was there already. Link, unlike rename, never replaces a
// file of the host's.
func impMoveFile(src, dst string) (bool, error) {
	if err := impSync(src); err != nil {
		return false, err
	}
	err := os.Link(src, dst)
	switch {
	case errors.Is(err, os.ErrExist):
		return false, os.Remove(src)
	case err != nil:
		if _, serr := os.Lstat(dst); !errors.Is(serr, os.ErrNotExist) {
			return false, fmt.Errorf("move %s into %s: %w", filepath.Base(src), filepath.Dir(dst), err)
		}
		// A file system without hard links: rename, as git does.
		if err := os.Rename(src, dst); err != nil {
			return false, fmt.Errorf("move %s into %s: %w", filepath.Base(src), filepath.Dir(dst), err)
		}
		return true, nil
	}
	if err := os.Remove(src); err != nil {
		return true, fmt.Errorf("remove %s from the quarantine: %w", src, err)
	}
	return true, nil
}

// impTakeBack removes the files an import added, the last first, so
// git never sees an index without its pack.
func impTakeBack(added []string) {
	for i := len(added) - 1; i >= 0; i-- {
		_ = os.Remove(added[i])
	}
}

// impSync flushes a file, or a directory's entries, to the disk.
func impSync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// impNotCheckedOut refuses to move a branch a work tree of the host has
// checked out: its files would stay as they were while the branch
// moved, and the guest's changes would look reverted (git fetch refuses
// the same).
func impNotCheckedOut(ctx context.Context, repo Repo, ref string) error {
	out, err := Isolated(ctx, repo.Root, impEnv, nil, "worktree", "list", "--porcelain", "-z")
	if err != nil {
		return fmt.Errorf("list the work trees of %s: %w", repo.Root, err)
	}
	var tree string
	for _, field := range strings.Split(string(out), "\x00") {
		if p, ok := strings.CutPrefix(field, "worktree "); ok {
			tree = p
		}
		if field == "branch "+ref {
			return errdefs.Mark(errdefs.ErrConflict, fmt.Errorf(
				"%s is checked out in %s; switch that work tree to another branch (git switch -) and harvest again",
				strings.TrimPrefix(ref, "refs/heads/"), tree))
		}
	}
	return nil
}
