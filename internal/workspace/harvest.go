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
	// stray is how many commits the guest made that no branch but the
	// workspace's holds and a harvest does not bring: on other branches,
	// a detached HEAD, the stash.
	stray int
}

// unknown is a count the guest could not give: taken as "some", so
// nothing is thrown away on its word.
const unknown = -1

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
	// A guest that stops answering does not hold a harvest past its limit.
	ctx, cancel := context.WithTimeout(ctx, api.HarvestLimit)
	defer cancel()
	unlock, err := s.lock(ctx, vm.ID)
	if err != nil {
		return api.HarvestResult{}, err
	}
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
	if p.WIP && st.dirty != 0 {
		if err := s.commitWIP(ctx, target, vm, ws); err != nil {
			return res, err
		}
		if st, err = s.guestState(ctx, target, ws); err != nil {
			return res, err
		}
		res.WIPCommitted = true
	}
	res.Uncommitted, res.Unsaved, res.Stray, res.GuestHead = st.dirty, st.unsaved, st.stray, st.head
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
// and committed nowhere. The stray count is the commits reachable from
// any ref or HEAD but neither from the workspace branch nor from what
// the guest was given (gitrepo.PreparedTips).
func (s *Service) guestState(ctx context.Context, target guestssh.Target, ws model.Workspace) (guestState, error) {
	prepared := ws.PreparedTree
	if prepared == "" || !isHex(prepared) {
		prepared = "HEAD"
	}
	out, err := s.guests.Output(ctx, target, stateScript(ws, prepared), nil, maxInfo)
	if err != nil {
		return guestState{}, guestError("read the workspace's state", target, err, "")
	}
	st, err := parseGuestState(out, len(ws.BaseCommit))
	if err != nil {
		return st, fmt.Errorf("vm %s answered nonsense about its workspace (%v); nothing harvested", target.Name, err)
	}
	return st, nil
}

// stateScript is the guest's side of guestState: five lines, a count
// that cannot be had is "unknown". Every process costs tens of
// milliseconds under emulation, so a clean guest runs two: one git
// status (porcelain v2 gives HEAD's branch and commit with the paths)
// and one rev-list; the header lines are read by the shell itself,
// byte by byte, and the paths counted by wc. Only a dirty work tree
// pays for the unsaved count.
func stateScript(ws model.Workspace, prepared string) string {
	return fmt.Sprintf(`cd %[1]s || exit %[2]d
umask 077
s=/tmp/.banger-harvest.$$
trap 'rm -f "$s" "$s.i" "$s.a" "$s.b"' EXIT
h=missing o= d=unknown
if (set -C; git status --porcelain=v2 --branch --no-renames --untracked-files=all > "$s"); then
	d=0
	while IFS= read -r l; do
		case $l in
		'# branch.head (detached)') h=detached ;;
		'# branch.head '*) h=refs/heads/${l#'# branch.head '} ;;
		'# branch.oid '*) o=${l#'# branch.oid '} ;;
		'#'*) ;;
		*) d=$((1 + $(wc -l))); break ;;
		esac
	done < "$s"
fi
printf 'head %%s\n' "$h"
if [ "$h" = %[3]s ] && [ "$o" != '(initial)' ] && [ -n "$o" ]; then
	printf 'tip %%s\n' "$o"
else
	printf 'tip %%s\n' "$(git rev-parse -q --verify %[4]s || echo missing)"
fi
printf 'dirty %%s\n' "$d"
if [ "$d" = 0 ]; then
	echo 'unsaved 0'
elif [ "$d" != unknown ] && cp .git/index "$s.i" 2>/dev/null &&
	w=$(GIT_INDEX_FILE="$s.i" git add -A 2>/dev/null && GIT_INDEX_FILE="$s.i" git write-tree) &&
	git diff --no-renames --name-only %[5]s "$w" | LC_ALL=C sort > "$s.a" &&
	git diff --no-renames --name-only HEAD "$w" | LC_ALL=C sort > "$s.b"; then
	printf 'unsaved %%s\n' "$(LC_ALL=C comm -12 "$s.a" "$s.b" | wc -l)"
else
	echo 'unsaved unknown'
fi
if n=$(git rev-list --count --all ^%[6]s --stdin < .git/%[7]s 2>/dev/null); then
	printf 'stray %%s\n' "$n"
else
	echo 'stray unknown'
fi
`, shellquote.Quote(ws.GuestPath), goneStatus, shellquote.Quote("refs/heads/"+ws.BranchName),
		shellquote.Quote("refs/heads/"+ws.BranchName+"^{commit}"), prepared,
		shellquote.Quote("refs/heads/"+ws.BranchName), gitrepo.PreparedTips)
}

// parseGuestState reads the state script's five lines strictly.
func parseGuestState(out []byte, idLen int) (guestState, error) {
	var st guestState
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := []string{"head ", "tip ", "dirty ", "unsaved ", "stray "}
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
	if len(vals[0]) > 300 || strings.ContainsFunc(vals[0], func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return st, fmt.Errorf("head %q", vals[0])
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
	for i, dst := range []*int{&st.dirty, &st.unsaved, &st.stray} {
		if *dst, err = count(vals[2+i]); err != nil {
			return st, err
		}
	}
	if st.unsaved == 0 && st.dirty == unknown {
		st.unsaved = unknown
	}
	return st, nil
}

// count reads a count a guest gave: a number, or "unknown".
func count(s string) (int, error) {
	if s == "unknown" {
		return unknown, nil
	}
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
[ "$(git symbolic-ref -q HEAD)" = %s ] || { echo "the guest repository is on $(git symbolic-ref -q --short HEAD || echo a detached HEAD), not "%s >&2; exit %d; }
n=$(git config user.name || echo banger); e=$(git config user.email || echo banger@localhost)
git add -A && git -c core.hooksPath=/dev/null -c user.name="$n" -c user.email="$e" commit -q --no-verify -m %s
`, shellquote.Quote(ws.GuestPath), goneStatus, shellquote.Quote("refs/heads/"+ws.BranchName), shellquote.Quote(ws.BranchName), wrongBranchStatus,
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
