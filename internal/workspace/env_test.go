package workspace

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/guestssh"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/testutil/memops"
	"banger/internal/testutil/sshexec"
)

// env is a workspace service whose "guest" is an sshexec server running
// commands on this host in a directory of its own (the guest's /root),
// with a host repository to take workspaces from.
type env struct {
	t     *testing.T
	s     *Service
	store *fakeStore
	vms   *fakeVMs
	ssh   *sshexec.Server
	home  string // the guest's /root
	repo  string // the host repository
	pool  *guestssh.Pool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	isolateGit(t)
	base := t.TempDir()
	e := &env{t: t, store: newFakeStore(), home: filepath.Join(base, "guest-root"), repo: filepath.Join(base, "src", "proj")}
	for _, d := range []string{e.home, e.repo, filepath.Join(base, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.ssh = sshexec.Start(t, e.home)
	e.vms = &fakeVMs{vms: map[string]model.VMRecord{}, target: guestssh.Target{Addr: e.ssh.Addr, Signer: e.ssh.Client, HostKey: e.ssh.HostKey.PublicKey()}}
	e.pool = &guestssh.Pool{}
	t.Cleanup(e.pool.Close)
	e.s = New(Deps{
		Store: e.store, VMs: e.vms, Guests: e.pool, Ops: operation.NewRegistry(&memops.Store{}, nil),
		TempDir: filepath.Join(base, "tmp"), GuestHome: e.home,
	})
	e.git(e.repo, "init", "-q", "-b", "main")
	e.git(e.repo, "config", "user.name", "Host User")
	e.git(e.repo, "config", "user.email", "host@example.com")
	e.write("README", "hello\n")
	e.write(".gitignore", ".env\n")
	e.git(e.repo, "add", ".")
	e.git(e.repo, "commit", "-q", "-m", "first")
	e.write("README", "hello again\n")
	e.git(e.repo, "commit", "-q", "-am", "second")
	return e
}

// isolateGit keeps the machine's git configuration out of a test.
func isolateGit(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(cfg, nil, 0o644)
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
}

func (e *env) write(rel, content string) {
	e.t.Helper()
	p := filepath.Join(e.repo, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) git(dir string, args ...string) string {
	e.t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("git %v in %s: %v\n%s", args, dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// addVM records a running VM the service can reach.
func (e *env) addVM(name string) model.VMRecord {
	vm := model.VMRecord{ID: "id-" + name, Name: name, State: model.VMStateRunning}
	e.vms.mu.Lock()
	e.vms.vms[name] = vm
	e.vms.mu.Unlock()
	return vm
}

// prepare prepares a workspace in vm and waits for it.
func (e *env) prepare(vm, mode string) (api.WorkspacePrepareDetail, error) {
	e.t.Helper()
	ctx := context.Background()
	op, err := e.s.PrepareBegin(ctx, api.WorkspacePrepareParams{Name: vm, WorkspaceSpec: api.WorkspaceSpec{Path: e.repo, Mode: mode}})
	if err != nil {
		return api.WorkspacePrepareDetail{}, err
	}
	rec, err := e.s.ops.Wait(ctx, op.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if rec.State != model.OperationSucceeded {
		return api.WorkspacePrepareDetail{}, fmt.Errorf("%s", rec.ErrorMessage)
	}
	ws, err := e.store.GetWorkspace(ctx, "id-"+vm)
	return api.WorkspacePrepareDetail{WorkspacePrepareResult: ws.WorkspacePrepareResult}, err
}

type fakeVMs struct {
	mu     sync.Mutex
	vms    map[string]model.VMRecord
	target guestssh.Target
}

func (f *fakeVMs) find(ref string) (model.VMRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, vm := range f.vms {
		if vm.Name == ref || vm.ID == ref {
			return vm, nil
		}
	}
	return model.VMRecord{}, fmt.Errorf("vm %q: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeVMs) Show(_ context.Context, ref string) (api.VMDetail, error) {
	vm, err := f.find(ref)
	return api.VMDetail{VMRecord: vm}, err
}

func (f *fakeVMs) GuestTarget(_ context.Context, ref string) (model.VMRecord, guestssh.Target, error) {
	vm, err := f.find(ref)
	if err != nil {
		return vm, guestssh.Target{}, err
	}
	if vm.State != model.VMStateRunning {
		return vm, guestssh.Target{}, fmt.Errorf("vm %s is %s: %w", vm.Name, vm.State, errdefs.ErrConflict)
	}
	t := f.target
	t.VMID, t.Name = vm.ID, vm.Name
	return vm, t, nil
}

type fakeStore struct {
	mu sync.Mutex
	ws map[string]model.Workspace
}

func newFakeStore() *fakeStore {
	return &fakeStore{ws: map[string]model.Workspace{}}
}

func (f *fakeStore) SaveWorkspace(_ context.Context, ws model.WorkspacePrepareResult, tree string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ws[ws.VMID] = model.Workspace{WorkspacePrepareResult: ws, PreparedTree: tree}
	return nil
}

func (f *fakeStore) GetWorkspace(_ context.Context, id string) (model.Workspace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ws, ok := f.ws[id]
	if !ok {
		return ws, fmt.Errorf("vm %q has no workspace: %w", id, errdefs.ErrNotFound)
	}
	return ws, nil
}

func (f *fakeStore) ListWorkspaces(context.Context) (map[string]model.Workspace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]model.Workspace{}
	for k, v := range f.ws {
		out[k] = v
	}
	return out, nil
}

func (f *fakeStore) RecordHarvest(_ context.Context, id, commit string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ws, ok := f.ws[id]
	if !ok {
		return errdefs.ErrNotFound
	}
	ws.HarvestedCommit, ws.HarvestedAt = commit, at
	f.ws[id] = ws
	return nil
}
