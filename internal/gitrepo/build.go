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
	"banger/internal/model"
)

// BuildOptions says what guest repository Build makes.
type BuildOptions struct {
	// Mode is how much of the host repository the guest gets;
	// shallow_overlay when "".
	Mode model.WorkspacePrepareMode
	// Branch is the branch the guest repository is on ("banger/<vm>"):
	// a valid branch name (git check-ref-format --branch).
	Branch string
	// Dest is the directory Build makes: it must not exist, its parent
	// must, and it must be outside the host repository.
	Dest string
	// Progress, when not nil, is called from Build's goroutine after
	// each step and, while files are copied, at most ten times a second.
	Progress func(Progress)
}

// Progress is how far a Build is. Files and Bytes count the work-tree
// files Build has copied itself (git's own checkout is not watched);
// the last report, Step "done", carries BuildResult's totals.
type Progress struct {
	Step  string // "history", "checkout", "changes", "submodules", "done"
	Files int    // files written under Dest so far
	Bytes int64  // bytes of file content written so far
}

// BuildResult is what Build made.
type BuildResult struct {
	Files       int      // regular files and symlinks under Dest, .git included
	Bytes       int64    // their apparent size (a symlink's is its target's length)
	LFSPointers int      // Git LFS pointer files in the work tree, copied as pointers
	Submodules  int      // submodules brought in
	Warnings    []string // what the guest gets differs from the host this way
}

// Step names a Progress report carries.
const (
	buildStepHistory    = "history"
	buildStepCheckout   = "checkout"
	buildStepChanges    = "changes"
	buildStepSubmodules = "submodules"
	buildStepDone       = "done"
)

// Build makes at opts.Dest the git work tree a guest gets from repo, on
// a new branch opts.Branch starting at repo.Head (whether the host's
// HEAD is a branch or detached). Dest is self-contained: no alternates,
// remote or path lead back to the host, so it can be moved into a VM.
//
// The modes:
//   - shallow_overlay: HEAD's commit alone (depth 1), checked out, with
//     the host's uncommitted work laid over it exactly: staged changes
//     in the index, unstaged and untracked (not ignored) files in the
//     work tree, so git status in Dest prints what it prints on the
//     host. Submodules are cloned from the host's checkouts of them.
//   - full_copy: every branch and tag, each under its host name, and
//     the same overlay and submodules.
//   - metadata_only: the git directory alone, HEAD's history, with a
//     sparse checkout that includes nothing; the guest widens it (git
//     sparse-checkout set --no-cone /dir, or git sparse-checkout
//     disable). The host's uncommitted work and submodules are not
//     carried in this mode.
//
// Ignored files are never copied. Git LFS pointer files are copied as
// pointers (no filter runs) and counted. A path with unmerged entries
// is refused (errdefs.ErrConflict). Build writes nothing into the host
// repository. A failure or a cancelled ctx removes Dest.
func Build(ctx context.Context, repo Repo, opts BuildOptions) (BuildResult, error) {
	mode, err := buildCheck(ctx, repo, &opts)
	if err != nil {
		return BuildResult{}, err
	}
	b := &builder{repo: repo, opts: opts, mode: mode}
	if mode != model.WorkspacePrepareModeMetadataOnly {
		if b.changes, err = overlayRead(ctx, repo); err != nil {
			return BuildResult{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return BuildResult{}, err
	}
	if err := os.Mkdir(opts.Dest, 0o755); err != nil {
		return BuildResult{}, fmt.Errorf("make destination %s: %w", opts.Dest, errdefs.PathCause(err))
	}
	res, err := b.run(ctx)
	if err != nil {
		if rmErr := buildRemove(opts.Dest); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return BuildResult{}, err
	}
	return res, nil
}

// builder holds one Build's state.
type builder struct {
	repo    Repo
	opts    BuildOptions
	mode    model.WorkspacePrepareMode
	changes []overlayEntry
	files   int   // work-tree files copied so far
	bytes   int64 // and their bytes
	last    time.Time
	res     BuildResult
}

// run makes Dest, which exists and is empty.
func (b *builder) run(ctx context.Context) (BuildResult, error) {
	dest := b.opts.Dest
	if err := b.history(ctx); err != nil {
		return b.res, err
	}
	b.report(buildStepHistory)
	// The identity goes in before the checkout, so the reflog names the
	// user rather than whoever runs banger.
	if err := buildSetIdentity(ctx, dest, b.repo); err != nil {
		return b.res, err
	}
	if err := b.checkout(ctx); err != nil {
		return b.res, err
	}
	b.report(buildStepCheckout)
	if b.mode != model.WorkspacePrepareModeMetadataOnly {
		if err := b.overlay(ctx); err != nil {
			return b.res, err
		}
		b.report(buildStepChanges)
		if err := b.submodules(ctx); err != nil {
			return b.res, err
		}
		b.report(buildStepSubmodules)
	}
	if err := buildCount(ctx, dest, &b.res); err != nil {
		return b.res, err
	}
	if n := b.res.LFSPointers; n == 1 {
		b.warn("1 Git LFS pointer file is copied as a pointer: run 'git lfs pull' in the guest where it can reach the LFS server")
	} else if n > 1 {
		b.warn("%d Git LFS pointer files are copied as pointers: run 'git lfs pull' in the guest where it can reach the LFS server", n)
	}
	if b.opts.Progress != nil {
		b.opts.Progress(Progress{Step: buildStepDone, Files: b.res.Files, Bytes: b.res.Bytes})
	}
	return b.res, nil
}

// report tells the caller a step is done.
func (b *builder) report(step string) {
	if b.opts.Progress == nil {
		return
	}
	b.last = time.Now()
	b.opts.Progress(Progress{Step: step, Files: b.files, Bytes: b.bytes})
}

// wrote counts what the overlay wrote and reports it, at most ten
// times a second.
func (b *builder) wrote(files int, n int64) {
	b.files += files
	b.bytes += n
	if b.opts.Progress != nil && time.Since(b.last) >= 100*time.Millisecond {
		b.report(buildStepChanges)
	}
}

func (b *builder) warn(format string, args ...any) {
	b.res.Warnings = append(b.res.Warnings, fmt.Sprintf(format, args...))
}

// buildCheck checks Build's input and normalises opts.Dest; it returns
// the mode, "" made shallow_overlay.
func buildCheck(ctx context.Context, repo Repo, opts *BuildOptions) (model.WorkspacePrepareMode, error) {
	mode := opts.Mode
	switch mode {
	case "":
		mode = model.WorkspacePrepareModeShallowOverlay
	case model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy, model.WorkspacePrepareModeMetadataOnly:
	default:
		return "", invalid("unknown workspace mode %q; accepted: %s, %s, %s", mode,
			model.WorkspacePrepareModeShallowOverlay, model.WorkspacePrepareModeFullCopy, model.WorkspacePrepareModeMetadataOnly)
	}
	if repo.Root == "" || repo.Head == "" {
		return "", invalid("no repository to build from: give a Repo that Inspect returned")
	}
	if err := needGit(); err != nil {
		return "", err
	}
	if err := buildCheckBranch(ctx, opts.Branch); err != nil {
		return "", err
	}
	dest, err := buildCheckDest(repo, opts.Dest)
	if err != nil {
		return "", err
	}
	opts.Dest = dest
	return mode, nil
}

// buildCheckBranch accepts what git check-ref-format --branch accepts,
// as it is (an @{-1} that expands to something else is refused).
func buildCheckBranch(ctx context.Context, branch string) error {
	if branch == "" {
		return invalid("no branch name given for the guest repository; give one like banger/<vm>")
	}
	// Outside any repository, so @{-1} and the like expand to nothing.
	out, err := Isolated(ctx, "/", nil, nil, "check-ref-format", "--branch", branch)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil || strings.TrimSuffix(string(out), "\n") != branch {
		return invalid("branch name %q is not valid; give a name git accepts (git check-ref-format --branch), like banger/<vm>", branch)
	}
	return nil
}

// buildCheckDest makes dest absolute and checks it does not exist, its
// parent is a directory, and it is not inside the host repository
// (Build writes nothing there).
func buildCheckDest(repo Repo, dest string) (string, error) {
	if dest == "" {
		return "", invalid("no destination directory given; give a path that does not exist yet, whose parent does")
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", invalid("destination %q: %v", dest, err)
	}
	abs = filepath.Clean(abs)
	if _, err := os.Lstat(abs); err == nil {
		return "", invalid("destination %s exists already; give a path that does not exist yet (Build makes it)", abs)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", invalid("destination %s: %v", abs, errdefs.PathCause(err))
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", invalid("destination's parent %s does not exist; give a path in an existing directory", filepath.Dir(abs))
	}
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return "", invalid("destination's parent %s is not a directory; give a path in an existing directory", filepath.Dir(abs))
	}
	resolved := filepath.Join(parent, filepath.Base(abs))
	for _, dir := range []string{repo.Root, repo.GitDir, repo.CommonDir} {
		if dir != "" && buildWithin(resolved, dir) {
			return "", invalid("destination %s is inside the repository (%s); give a path outside it", abs, dir)
		}
	}
	return resolved, nil
}

// buildWithin says whether path is dir or below it, symlinks in dir
// resolved.
func buildWithin(path, dir string) bool {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// buildRemove removes a failed Build's Dest. A git killed by a
// cancelled ctx may leave a child (index-pack) writing for a moment, so
// it tries again until Dest is gone.
func buildRemove(dest string) error {
	var err error
	for range 50 {
		err = os.RemoveAll(dest)
		if _, statErr := os.Lstat(dest); errors.Is(statErr, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove the unfinished destination %s: %w", dest, errdefs.PathCause(err))
}
