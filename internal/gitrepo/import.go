package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"banger/internal/errdefs"
)

// ImportRequest is a bundle a guest handed back, and what may come of
// it. The bundle's content is untrusted: a hostile guest wrote it.
type ImportRequest struct {
	Bundle   string // path of the bundle file on the host (content untrusted)
	MaxBytes int64  // the bundle may not be larger (0: DefaultMaxBundleBytes)
	Branch   string // "banger/<vm>": the only ref read from the bundle and the only host ref written, refs/heads/<Branch>
	Base     string // the commit the workspace started from: the branch must descend from it
	Force    bool   // replace a host branch that is not an ancestor of what the bundle brings
}

// ImportResult is what an import did.
type ImportResult struct {
	Old       string   // the host branch's commit before, "" when it did not exist
	New       string   // its commit now (== Old for a no-op)
	NoOp      bool     // nothing new: the bundle's tip was already the host branch's (or Base)
	Commits   []Commit // Base..New, newest first (at most 1000; Truncated says when more)
	Truncated bool
}

// Commit is one line of `git log --oneline`.
type Commit struct{ Hash, Subject string }

// DefaultMaxBundleBytes is how large a guest's bundle may be when the
// request does not say.
const DefaultMaxBundleBytes = 1 << 30

const (
	// impMaxCommits bounds ImportResult.Commits.
	impMaxCommits = 1000
	// impBranchPrefix starts every branch an import may write.
	impBranchPrefix = "banger/"
)

// Import brings the branch a guest handed back as a bundle into repo as
// refs/heads/<Branch>, and nothing else: the bundle's objects are
// fetched into a quarantine directory, checked (fsck, connectivity,
// descent from Base, fast-forward of the host branch unless Force), and
// only then moved into the host's object store and the one ref updated,
// checking its old value. Any failure, or ctx cancelled before the
// objects move, leaves the host repository as it was. Hooks never run
// and the user's global and system configuration is not read.
func Import(ctx context.Context, repo Repo, req ImportRequest) (ImportResult, error) {
	if err := needGit(); err != nil {
		return ImportResult{}, err
	}
	in, err := impCheck(ctx, repo, &req)
	if err != nil {
		return ImportResult{}, err
	}
	head, err := bundleReadHeader(in.bundle, in.ref, in.hexLen, in.format)
	in.bundle.Close()
	if err != nil {
		return ImportResult{}, invalid("%s: %w", req.Bundle, err)
	}
	old, err := impBranchCommit(ctx, repo, in.ref)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Old: old, New: old}
	if head.Tip == req.Base || head.Tip == old {
		res.NoOp = true
		if old != "" {
			if res.Commits, res.Truncated, err = impLog(ctx, repo, nil, req.Base, old, impMaxCommits); err != nil {
				return ImportResult{}, err
			}
		}
		return res, nil
	}
	if err := impNotCheckedOut(ctx, repo, in.ref); err != nil {
		return ImportResult{}, err
	}
	q, err := impNewQuarantine(repo)
	if err != nil {
		return ImportResult{}, err
	}
	defer q.remove()
	if err := q.fetch(ctx, req.Bundle, in.ref); err != nil {
		return ImportResult{}, err
	}
	if err := q.verify(ctx, req, head.Tip, old); err != nil {
		return ImportResult{}, err
	}
	res.Commits, res.Truncated, err = impLog(ctx, repo, q.env, req.Base, head.Tip, impMaxCommits)
	if err != nil {
		return ImportResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return ImportResult{}, err
	}
	if err := q.commit(ctx, in.ref, head.Tip, old, in.hexLen); err != nil {
		return ImportResult{}, err
	}
	res.New = head.Tip
	return res, nil
}

// impInput is a checked request: the bundle open, the ref it names and
// the host repository's object format.
type impInput struct {
	bundle *os.File
	ref    string
	hexLen int
	format string
}

// impCheck checks req against repo and opens the bundle.
func impCheck(ctx context.Context, repo Repo, req *ImportRequest) (impInput, error) {
	var in impInput
	if repo.Root == "" || repo.CommonDir == "" || !filepath.IsAbs(repo.CommonDir) {
		return in, invalid("import: the repository was not inspected (no work tree or git directory)")
	}
	if err := impCheckBranch(ctx, repo, req.Branch); err != nil {
		return in, err
	}
	in.ref = "refs/heads/" + req.Branch
	format, err := Isolated(ctx, repo.Root, nil, nil, "rev-parse", "--show-object-format")
	if err != nil {
		return in, fmt.Errorf("object format of %s: %w", repo.Root, err)
	}
	in.format = strings.TrimSpace(string(format))
	switch in.format {
	case "sha1":
		in.hexLen = 40
	case "sha256":
		in.hexLen = 64
	default:
		return in, fmt.Errorf("repository %s uses object format %q, which banger does not know", repo.Root, in.format)
	}
	if err := impCheckBase(ctx, repo, req.Base, in.hexLen); err != nil {
		return in, err
	}
	in.bundle, err = impOpenBundle(req)
	return in, err
}

// impCheckBranch accepts only a valid branch name under banger/.
func impCheckBranch(ctx context.Context, repo Repo, branch string) error {
	if !strings.HasPrefix(branch, impBranchPrefix) || len(branch) == len(impBranchPrefix) {
		return invalid("import: branch %q is not a workspace branch (%s<vm>); banger writes no other", branch, impBranchPrefix)
	}
	if _, err := Isolated(ctx, repo.Root, nil, nil, "check-ref-format", "refs/heads/"+branch); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return invalid("import: %q is not a valid git branch name", branch)
	}
	return nil
}

// impCheckBase accepts only a full object id of a commit in the host.
func impCheckBase(ctx context.Context, repo Repo, base string, hexLen int) error {
	if !bundleIsID(base, hexLen) {
		return invalid("import: base %q is not a full %d-digit lowercase hex commit id", base, hexLen)
	}
	typ, err := Isolated(ctx, repo.Root, impEnv, nil, "cat-file", "-t", base)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return invalid("import: base commit %s is not in %s (was the workspace made from another repository?)", base[:12], repo.Root)
	}
	if t := strings.TrimSpace(string(typ)); t != "commit" {
		return invalid("import: base %s is a %s, not a commit", base[:12], t)
	}
	return nil
}

// impOpenBundle opens the bundle, refusing a symbolic link, anything
// but a regular file, and one larger than the request allows.
func impOpenBundle(req *ImportRequest) (*os.File, error) {
	max := req.MaxBytes
	switch {
	case max < 0:
		return nil, invalid("import: MaxBytes %d is negative", max)
	case max == 0:
		max = DefaultMaxBundleBytes
	}
	if req.Bundle == "" {
		return nil, invalid("import: no bundle file given")
	}
	path, err := filepath.Abs(req.Bundle)
	if err != nil {
		return nil, invalid("import: bundle path %q: %w", req.Bundle, err)
	}
	req.Bundle = path
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, errdefs.Mark(errdefs.ErrNotFound, fmt.Errorf("the guest's bundle %s does not exist", path))
	case err != nil:
		return nil, invalid("the guest's bundle %s: %w", path, errdefs.PathCause(err))
	case !fi.Mode().IsRegular():
		return nil, invalid("the guest's bundle %s is not a regular file (%s); banger reads only a file it copied out itself", path, impKind(fi.Mode()))
	case fi.Size() > max:
		return nil, invalid("the guest's bundle %s is %d bytes, over the limit of %d; nothing harvested", path, fi.Size(), max)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, invalid("the guest's bundle %s: %w", path, errdefs.PathCause(err))
	}
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) || fi2.Size() > max {
		f.Close()
		return nil, invalid("the guest's bundle %s changed while banger opened it; nothing harvested", path)
	}
	return f, nil
}

func impKind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// impBranchCommit is the host branch's commit, "" when it does not
// exist.
func impBranchCommit(ctx context.Context, repo Repo, ref string) (string, error) {
	out, err := Isolated(ctx, repo.Root, impEnv, nil, "for-each-ref", "--format=%(refname) %(objectname)", ref)
	if err != nil {
		return "", fmt.Errorf("read %s in %s: %w", ref, repo.Root, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if name, id, ok := strings.Cut(line, " "); ok && name == ref {
			return id, nil
		}
	}
	return "", nil
}
