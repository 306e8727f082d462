package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/model"
)

// dirty gives the host repository staged, unstaged, untracked and
// ignored work.
func (e *env) dirty() {
	e.write("staged.txt", "staged\n")
	e.git(e.repo, "add", "staged.txt")
	e.write("README", "changed, not staged\n")
	e.write("untracked.txt", "new\n")
	e.write(".env", "SECRET=1\n")
}

func TestPrepareIntoRunningVM(t *testing.T) {
	e := newEnv(t)
	e.dirty()
	e.addVM("dev")
	if _, err := e.prepare("dev", ""); err != nil {
		t.Fatal(err)
	}
	guest := filepath.Join(e.home, "proj")
	if got, want := e.git(guest, "status", "--porcelain"), e.git(e.repo, "status", "--porcelain"); got != want {
		t.Errorf("guest git status\n%s\nwant the host's\n%s", got, want)
	}
	if b := e.git(guest, "symbolic-ref", "--short", "HEAD"); b != "banger/dev" {
		t.Errorf("guest branch %q, want banger/dev", b)
	}
	if _, err := os.Stat(filepath.Join(guest, ".env")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the ignored .env reached the guest: %v", err)
	}
	ws, err := e.s.Show(context.Background(), "dev")
	if err != nil {
		t.Fatal(err)
	}
	head := e.git(e.repo, "rev-parse", "HEAD")
	want := model.WorkspacePrepareResult{
		VMID: "id-dev", SourcePath: e.repo, RepoRoot: e.repo, RepoName: "proj", GuestPath: guest,
		Mode: model.WorkspacePrepareModeShallowOverlay, HeadCommit: head, CurrentBranch: "main",
		BranchName: "banger/dev", BaseCommit: head, PreparedAt: ws.PreparedAt,
	}
	if ws.WorkspacePrepareResult != want || ws.PreparedAt.IsZero() {
		t.Errorf("recorded\n%+v\nwant\n%+v", ws.WorkspacePrepareResult, want)
	}
	if _, err := e.prepare("dev", ""); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("a second prepare into the VM: %v, want a conflict", err)
	}
	if left, _ := filepath.Glob(filepath.Join(e.s.tempDir, "*")); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}

func TestPrepareRefusals(t *testing.T) {
	e := newEnv(t)
	e.addVM("dev")
	e.vms.vms["off"] = model.VMRecord{ID: "id-off", Name: "off", State: model.VMStateStopped}
	plain := t.TempDir()
	ctx := context.Background()
	for name, tc := range map[string]struct {
		p    api.WorkspacePrepareParams
		kind error
		want string
	}{
		"bad mode":     {api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: api.WorkspaceSpec{Path: e.repo, Mode: "deep"}}, errdefs.ErrInvalidArgument, `workspace mode "deep" is not one of shallow_overlay`},
		"relative":     {api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: api.WorkspaceSpec{Path: "src/proj"}}, errdefs.ErrInvalidArgument, "is not absolute"},
		"not git":      {api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: api.WorkspaceSpec{Path: plain}}, errdefs.ErrInvalidArgument, "is not inside a git work tree"},
		"stopped vm":   {api.WorkspacePrepareParams{Name: "off", WorkspaceSpec: api.WorkspaceSpec{Path: e.repo}}, errdefs.ErrConflict, "vm off is stopped"},
		"no such vm":   {api.WorkspacePrepareParams{Name: "nope", WorkspaceSpec: api.WorkspaceSpec{Path: e.repo}}, errdefs.ErrNotFound, `vm "nope"`},
		"missing path": {api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: api.WorkspaceSpec{Path: filepath.Join(plain, "gone")}}, errdefs.ErrNotFound, "does not exist"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.s.PrepareBegin(ctx, tc.p)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %v containing %q", err, tc.kind, tc.want)
			}
		})
	}
}

func TestPrepareOntoATakenGuestPath(t *testing.T) {
	e := newEnv(t)
	e.addVM("dev")
	taken := filepath.Join(e.home, "proj")
	os.MkdirAll(taken, 0o755)
	os.WriteFile(filepath.Join(taken, "mine"), []byte("the user's"), 0o644)
	_, err := e.prepare("dev", "")
	if err == nil || !strings.Contains(err.Error(), "exists already in vm dev") {
		t.Fatalf("prepare onto a taken path: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(taken, "mine")); string(b) != "the user's" {
		t.Errorf("the guest's own directory was changed")
	}
	if left, _ := filepath.Glob(filepath.Join(e.home, ".banger-workspace.*")); len(left) != 0 {
		t.Errorf("left in the guest: %v", left)
	}
	if _, err := e.s.Show(context.Background(), "dev"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a failed prepare was recorded: %v", err)
	}
}

func TestPlanCreateBuildsAndRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.s.PlanCreate(ctx, api.WorkspaceSpec{Path: e.repo, Mode: "nope"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad mode: %v", err)
	}
	plan, err := e.s.PlanCreate(ctx, api.WorkspaceSpec{Path: filepath.Join(e.repo), Mode: "full_copy"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.GuestPath != filepath.Join(e.home, "proj") || !strings.HasPrefix(plan.DefaultVMName(ctx), "proj-") {
		t.Errorf("plan: guest path %s, name %s", plan.GuestPath, plan.DefaultVMName(ctx))
	}
	// Names whose banger/ branch the repository has are passed over:
	// with half of them taken, a pick that ignored them would land on
	// one within a few tries.
	head := e.git(e.repo, "rev-parse", "HEAD")
	var refs strings.Builder
	for i := 0; i < 1<<15; i++ {
		fmt.Fprintf(&refs, "create refs/heads/banger/proj-%04x %s\n", 2*i, head)
	}
	cmd := exec.Command("git", "-C", e.repo, "update-ref", "--stdin")
	cmd.Stdin = strings.NewReader(refs.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update-ref: %v %s", err, out)
	}
	for i := 0; i < 20; i++ {
		var n int
		fmt.Sscanf(strings.TrimPrefix(plan.DefaultVMName(ctx), "proj-"), "%x", &n)
		if n%2 == 0 {
			t.Errorf("DefaultVMName gave proj-%04x, whose branch exists", n)
		}
	}
	vm := e.addVM("made")
	dir := filepath.Join(t.TempDir(), "ws")
	var details []string
	n, err := plan.Build(ctx, vm, dir, progressFunc(func(m string, _ float64) { details = append(details, m) }))
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || len(details) == 0 {
		t.Errorf("Build said %d bytes and reported %q", n, details)
	}
	if b := e.git(dir, "symbolic-ref", "--short", "HEAD"); b != "banger/made" {
		t.Errorf("branch %q", b)
	}
	if ws, err := e.store.GetWorkspace(ctx, vm.ID); err != nil || ws.Mode != model.WorkspacePrepareModeFullCopy {
		t.Errorf("recorded %+v, %v", ws, err)
	}
}

type progressFunc func(string, float64)

func (f progressFunc) Detail(m string, frac float64) { f(m, frac) }

func TestDefaultVMName(t *testing.T) {
	for repo, prefix := range map[string]string{
		"myproject": "myproject-", "My_Project.git": "my-project-git-", "---": "ws-", "ünï": "n-",
		strings.Repeat("a", 80): strings.Repeat("a", 58) + "-",
	} {
		got := DefaultVMName(repo)
		if !strings.HasPrefix(got, prefix) || len(got) != len(prefix)+4 {
			t.Errorf("DefaultVMName(%q) = %q, want %q and 4 hex digits", repo, got, prefix)
		}
		if err := model.ValidateName("vm", got); err != nil {
			t.Errorf("DefaultVMName(%q) = %q: %v", repo, got, err)
		}
	}
}

func TestCheckRepoName(t *testing.T) {
	for _, bad := range []string{".ssh", ".banger", ".banger-x", "", "."} {
		if err := checkRepoName(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkRepoName(%q) = %v, want refused", bad, err)
		}
	}
	for _, ok := range []string{"proj", ".dotfiles", "my project"} {
		if err := checkRepoName(ok); err != nil {
			t.Errorf("checkRepoName(%q) = %v", ok, err)
		}
	}
}
