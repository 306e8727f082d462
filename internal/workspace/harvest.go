package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/gitrepo"
	"banger/internal/guestssh"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/shellquote"
)

const (
	// maxInfo bounds what the guest may answer to the info script.
	maxInfo = 4 << 10
	// goneStatus is the guest scripts' exit status when the workspace
	// directory is not there.
	goneStatus = 20
	// wrongBranchStatus: the guest repository is not on the workspace's
	// branch, so --wip will not commit.
	wrongBranchStatus = 21
	// maxCommitsListed bounds the commits a harvest lists.
	maxCommitsListed = 1000
)

// guestState is what the guest says of its workspace repository. All of
// it is untrusted, and checked when parsed.
type guestState struct {
	head  string // the symbolic ref HEAD is, or "detached"
	tip   string // the workspace branch's commit, "" when it is gone
	dirty int    // paths `git status` lists
	// unsaved is how many of them the guest changed since the prepare.
	unsaved int
}

// Harvest brings the commits made in the guest on the workspace branch
// into the host repository as the branch of the same name; see
// gitrepo.Import for what it never touches.
func (s *Service) Harvest(ctx context.Context, p api.WorkspaceHarvestParams) (api.HarvestResult, error) {
	vm, target, err := s.vms.GuestTarget(ctx, p.Name)
	if err != nil {
		return api.HarvestResult{}, err
	}
	ws, err := s.Show(ctx, vm.ID)
	if err != nil {
		return api.HarvestResult{}, err
	}
	unlock := s.lock(vm.ID)
	defer unlock()
	op := oplog.Begin(ctx, s.logger, "workspace.harvest", append(oplog.VMAttrs(vm), "repo", ws.RepoRoot, "branch", ws.BranchName)...)
	res, err := s.harvest(ctx, vm, target, ws, p)
	if err != nil {
		return res, op.Fail(err)
	}
	op.Done("commits", len(res.Commits), "no_op", res.NoOp, "uncommitted", res.Uncommitted)
	return res, nil
}

func (s *Service) harvest(ctx context.Context, vm model.VMRecord, target guestssh.Target, ws model.Workspace, p api.WorkspaceHarvestParams) (api.HarvestResult, error) {
	res := api.HarvestResult{VM: vm.Name, RepoRoot: ws.RepoRoot, Branch: ws.BranchName, Base: ws.BaseCommit, Commits: []api.Commit{}}
	repo, err := gitrepo.Inspect(ctx, ws.RepoRoot)
	if err != nil {
		return res, fmt.Errorf("the workspace's host repository: %w", err)
	}
	st, err := s.guestState(ctx, target, ws)
	if err != nil {
		return res, err
	}
	if p.WIP && st.dirty > 0 {
		if err := s.commitWIP(ctx, target, vm, ws); err != nil {
			return res, err
		}
		if st, err = s.guestState(ctx, target, ws); err != nil {
			return res, err
		}
		res.WIPCommitted = true
	}
	res.Uncommitted, res.Unsaved = st.dirty, st.unsaved
	if st.tip == "" {
		return res, fmt.Errorf("the guest has no branch %s any more (deleted or renamed in vm %s); nothing harvested: %w", ws.BranchName, vm.Name, errdefs.ErrConflict)
	}
	imp, err := s.importTip(ctx, target, repo, ws, st.tip, p.Force)
	if err != nil {
		return res, err
	}
	res.Old, res.New, res.NoOp = imp.Old, imp.New, imp.NoOp
	if res.New != "" && res.New != ws.BaseCommit {
		commits, truncated, err := gitrepo.Log(ctx, repo, ws.BaseCommit, res.New, maxCommitsListed)
		if err != nil {
			return res, err
		}
		for _, c := range commits {
			res.Commits = append(res.Commits, api.Commit{Hash: c.Hash, Subject: c.Subject})
		}
		res.Truncated = truncated
	}
	if !res.NoOp {
		if err := s.store.RecordHarvest(ctx, vm.ID, res.New, s.now()); err != nil {
			return res, fmt.Errorf("harvested, but not recorded: %w", err)
		}
	}
	return res, nil
}

// importTip fetches the guest's branch at tip into the host, unless the
// host has it already.
func (s *Service) importTip(ctx context.Context, target guestssh.Target, repo gitrepo.Repo, ws model.Workspace, tip string, force bool) (gitrepo.ImportResult, error) {
	hostTip := branchTip(ctx, repo, ws.BranchName)
	if tip == ws.BaseCommit || tip == hostTip {
		return gitrepo.ImportResult{Old: hostTip, New: hostTip, NoOp: true}, nil
	}
	f, err := os.CreateTemp(s.tempDir, "harvest-*.bundle")
	if err != nil {
		return gitrepo.ImportResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := fmt.Sprintf("cd %s || exit %d\ngit bundle create -q - %s %s",
		shellquote.Quote(ws.GuestPath), goneStatus, shellquote.Quote("refs/heads/"+ws.BranchName), shellquote.Quote("^"+ws.BaseCommit))
	stderr, caught := guestssh.Stderr()
	capped := &guestssh.CapWriter{W: f, Max: s.maxBundle}
	if err := s.guests.Run(ctx, target, guestssh.Cmd{Command: cmd, Stdout: capped, Stderr: stderr}); err != nil {
		if errors.Is(err, guestssh.ErrTooMuch) {
			return gitrepo.ImportResult{}, fmt.Errorf("the guest's bundle of %s is larger than the %s a harvest takes; nothing harvested: %w",
				ws.BranchName, model.HumanBytes(s.maxBundle), errdefs.ErrInvalidArgument)
		}
		return gitrepo.ImportResult{}, guestError("bundle the workspace branch", target, err, caught())
	}
	if err := f.Close(); err != nil {
		return gitrepo.ImportResult{}, err
	}
	return gitrepo.Import(ctx, repo, gitrepo.ImportRequest{
		Bundle: f.Name(), MaxBytes: s.maxBundle, Branch: ws.BranchName, Base: ws.BaseCommit, Force: force,
	})
}

// branchTip is the host branch's commit, "" when there is none.
func branchTip(ctx context.Context, repo gitrepo.Repo, branch string) string {
	out, err := gitrepo.Host(ctx, repo.Root, nil, "rev-parse", "-q", "--verify", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// guestState asks the guest where its workspace repository stands. The
// unsaved count compares the guest's work tree (as `git add -A` would
// commit it, into a scratch index) with the tree it was given and with
// its HEAD: a path that differs from both is work done in the guest
// and committed nowhere.
func (s *Service) guestState(ctx context.Context, target guestssh.Target, ws model.Workspace) (guestState, error) {
	prepared := ws.PreparedTree
	if prepared == "" || !isHex(prepared) {
		prepared = "HEAD"
	}
	cmd := fmt.Sprintf(`cd %s || exit %d
printf 'head %%s\n' "$(git symbolic-ref -q HEAD || echo detached)"
printf 'tip %%s\n' "$(git rev-parse -q --verify %s || echo missing)"
printf 'dirty %%s\n' "$(git status --porcelain=v1 -z --no-renames --untracked-files=all | tr -cd '\0' | wc -c)"
t=$(mktemp) && cp .git/index "$t" 2>/dev/null
if w=$(GIT_INDEX_FILE="$t" git add -A 2>/dev/null && GIT_INDEX_FILE="$t" git write-tree) &&
	git diff --no-renames --name-only %s "$w" | LC_ALL=C sort > "$t.a" &&
	git diff --no-renames --name-only HEAD "$w" | LC_ALL=C sort > "$t.b"; then
	printf 'unsaved %%s\n' "$(LC_ALL=C comm -12 "$t.a" "$t.b" | wc -l)"
else
	echo 'unsaved unknown'
fi
rm -f "$t" "$t.a" "$t.b"
`, shellquote.Quote(ws.GuestPath), goneStatus, shellquote.Quote("refs/heads/"+ws.BranchName+"^{commit}"), prepared)
	out, err := s.guests.Output(ctx, target, cmd, nil, maxInfo)
	if err != nil {
		return guestState{}, guestError("read the workspace's state", target, err, "")
	}
	st, err := parseGuestState(out, len(ws.BaseCommit))
	if err != nil {
		return st, fmt.Errorf("vm %s answered nonsense about its workspace (%v); nothing harvested", target.Name, err)
	}
	return st, nil
}

// parseGuestState reads the info script's four lines strictly. An
// unknown unsaved count is taken to be the dirty count: keep what
// cannot be told apart.
func parseGuestState(out []byte, idLen int) (guestState, error) {
	var st guestState
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := []string{"head ", "tip ", "dirty ", "unsaved "}
	if len(lines) != len(want) {
		return st, fmt.Errorf("%d lines, want %d", len(lines), len(want))
	}
	vals := make([]string, len(want))
	for i, l := range lines {
		v, ok := strings.CutPrefix(l, want[i])
		if !ok {
			return st, fmt.Errorf("line %d does not start with %q", i+1, want[i])
		}
		vals[i] = strings.TrimSpace(v)
	}
	st.head = vals[0]
	switch {
	case vals[1] == "missing":
	case len(vals[1]) == idLen && isHex(vals[1]):
		st.tip = vals[1]
	default:
		return st, fmt.Errorf("tip %q is not an object id", vals[1])
	}
	var err error
	if st.dirty, err = count(vals[2]); err != nil {
		return st, err
	}
	st.unsaved = st.dirty
	if vals[3] != "unknown" {
		if st.unsaved, err = count(vals[3]); err != nil {
			return st, err
		}
	}
	return st, nil
}

// count reads a count a guest gave.
func count(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<30 {
		return 0, fmt.Errorf("count %q", s)
	}
	return n, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// commitWIP commits the guest's uncommitted work onto the workspace
// branch as one commit, hooks off.
func (s *Service) commitWIP(ctx context.Context, target guestssh.Target, vm model.VMRecord, ws model.Workspace) error {
	cmd := fmt.Sprintf(`cd %s || exit %d
[ "$(git symbolic-ref -q HEAD)" = %s ] || { echo "the guest repository is on $(git symbolic-ref -q --short HEAD || echo a detached HEAD), not %s" >&2; exit %d; }
n=$(git config user.name || echo banger); e=$(git config user.email || echo banger@localhost)
git add -A && git -c core.hooksPath=/dev/null -c user.name="$n" -c user.email="$e" commit -q --no-verify -m %s
`, shellquote.Quote(ws.GuestPath), goneStatus, shellquote.Quote("refs/heads/"+ws.BranchName), ws.BranchName, wrongBranchStatus,
		shellquote.Quote("WIP from banger vm "+vm.Name))
	stderr, caught := guestssh.Stderr()
	if err := s.guests.Run(ctx, target, guestssh.Cmd{Command: cmd, Stderr: stderr}); err != nil {
		return guestError("commit the uncommitted work (--wip)", target, err, caught())
	}
	return nil
}

// guestError says what failed in the guest, and how.
func guestError(what string, target guestssh.Target, err error, stderr string) error {
	var ee *guestssh.ExitError
	if errors.As(err, &ee) && ee.Status == goneStatus {
		return fmt.Errorf("vm %s: the workspace directory is gone from the guest; nothing harvested: %w", target.Name, errdefs.ErrConflict)
	}
	if stderr != "" {
		return fmt.Errorf("vm %s: %s: %w: %s", target.Name, what, err, stderr)
	}
	return fmt.Errorf("vm %s: %s: %w", target.Name, what, err)
}
