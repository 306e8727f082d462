package vms

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/api"
	"banger/internal/guestapi"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/paths"
	"banger/internal/sshkey"
	"banger/internal/vmm"
)

const mib = 1 << 20

// env is a VM service wired to the fakes, with one image, "debian", and
// a guest SSH server on 127.0.0.1 that presents the host key create gave
// the VM (read from the fake work disk).
type env struct {
	t      *testing.T
	s      *Service
	store  *fakeStore
	taps   *fakeTaps
	helper *fakeHelper
	drv    *fakeDriver
	guest  *fakeGuest
	hooks  *hookLog
	layout paths.Layout
	image  model.Image
	deps   Deps
	// guestDown makes the guest's SSH server drop every connection.
	guestDown atomic.Bool
	// impostor, when set, is the host key the guest presents instead of
	// the one on its work disk.
	impostor atomic.Pointer[sshkey.Key]
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{t: t, store: newFakeStore(), taps: newFakeTaps(t), helper: newFakeHelper(t), drv: newFakeDriver(t), hooks: &hookLog{}}
	e.layout = paths.Layout{
		ConfigFile: filepath.Join(dir, "config.toml"),
		RuntimeDir: filepath.Join(dir, "run"),
		StateDir:   filepath.Join(dir, "state"),
		DataDir:    filepath.Join(dir, "data"),
		ImagesDir:  filepath.Join(dir, "data", "images"),
		VMsDir:     filepath.Join(dir, "data", "vms"),
	}
	imgDir := filepath.Join(e.layout.ImagesDir, "debian")
	e.image = model.Image{ID: "img-0001", Name: "debian", RootfsPath: filepath.Join(imgDir, "rootfs.ext4"), KernelPath: filepath.Join(imgDir, "vmlinux")}
	for _, p := range []string{e.image.RootfsPath, e.image.KernelPath} {
		mustWrite(t, p, []byte("not really "+filepath.Base(p)))
	}
	e.store.images[e.image.ID] = e.image
	cfg := model.DaemonConfig{
		SSHKeyPath: filepath.Join(e.layout.StateDir, "id_ed25519"),
		// The bridge is 127.0.0.2/24, so the first VM gets 127.0.0.1.
		BridgeIP: "127.0.0.2", CIDR: "24",
		DefaultImageName: "debian",
	}
	e.guest = startGuest(t, e.workDiskHostKey, func() ssh.PublicKey {
		if k, err := sshkey.Load(cfg.SSHKeyPath); err == nil {
			return k.Public()
		}
		return nil
	})
	e.deps = Deps{
		Config: cfg, Layout: e.layout, Store: e.store, Taps: e.taps, Helper: e.helper,
		Drivers: Drivers{ByName: map[string]vmm.Driver{fakeDriverName: e.drv}, Auto: fakeDriverName},
		Ops:     operation.NewRegistry(e.store, nil),
		Hooks:   e.hooks.hooks(),
	}
	e.start()
	t.Cleanup(e.checkStates)
	return e
}

// start builds the service, as a bangerd starting does (Recover is the
// caller's to run).
func (e *env) start() {
	e.s = New(context.Background(), e.deps)
	e.s.sshPort = e.guest.port()
	e.t.Cleanup(e.s.Close)
}

// restart is bangerd stopping (it stops watching VMMs, which keep
// running) and a new one starting on the same store and host.
func (e *env) restart() {
	e.s.Close()
	e.start()
}

// workDiskHostKey is the host key create put on the (only) VM's work
// disk, as the guest would read it; an error while there is none.
func (e *env) workDiskHostKey() (ssh.Signer, error) {
	if e.guestDown.Load() {
		return nil, errors.New("guest down")
	}
	if k := e.impostor.Load(); k != nil {
		return k.Signer, nil
	}
	found, _ := filepath.Glob(filepath.Join(e.layout.VMsDir, "*", "worktree", guestRel(guestapi.HostKeyPath)))
	if len(found) != 1 {
		return nil, errors.New("no host key on a work disk (yet)")
	}
	data, err := os.ReadFile(found[0])
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(data)
}

// guestRel is a guest path under /root as the work disk holds it.
func guestRel(guestPath string) string {
	rel, _ := filepath.Rel(guestapi.GuestHome, guestPath)
	return rel
}

// checkStates: every VM row ever written has one of the four states,
// and its runtime mirror says the same.
func (e *env) checkStates() {
	for i, vm := range e.store.allWrites() {
		if !vm.State.Valid() || vm.State != vm.Runtime.State {
			e.t.Errorf("write %d of vm %s: State %q, Runtime.State %q", i, vm.Name, vm.State, vm.Runtime.State)
		}
	}
}

// req is a small create request.
func (e *env) req(name string) CreateRequest {
	return CreateRequest{VMCreateRequest: model.VMCreateRequest{
		Name: name, VCPUCount: 1, MemoryMiB: 256,
		SystemOverlaySizeByte: 64 * mib, WorkDiskSizeBytes: 64 * mib,
	}}
}

// create runs a create to its end, as CreateBegin would, and returns
// what create returned (the error itself, not the operation's text) and
// the operation's final record.
func (e *env) create(req CreateRequest) (api.VMDetail, model.Operation, error) {
	e.t.Helper()
	ctx := context.Background()
	plan, err := e.s.planCreate(ctx, req)
	if err != nil {
		return api.VMDetail{}, model.Operation{}, err
	}
	var res api.VMDetail
	var cerr error
	op, err := e.s.ops.Begin(ctx, KindCreate, plan.name, plan.stages(), func(ctx context.Context, r *operation.Reporter) (any, error) {
		res, cerr = e.s.create(ctx, r, plan)
		return res, cerr
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.s.ops.Wait(ctx, op.ID); err != nil {
		e.t.Fatal(err)
	}
	rec, _ := e.store.GetOperation(ctx, op.ID)
	return res, rec, cerr
}

// mustCreate creates a running VM (or a stopped one with noStart).
func (e *env) mustCreate(name string, nat, noStart bool) model.VMRecord {
	e.t.Helper()
	req := e.req(name)
	req.NATEnabled, req.NoStart = nat, noStart
	if _, _, err := e.create(req); err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return e.vm(name)
}

// vm is the VM's row now.
func (e *env) vm(ref string) model.VMRecord {
	e.t.Helper()
	vm, err := e.store.FindVM(context.Background(), ref)
	if err != nil {
		e.t.Fatal(err)
	}
	return vm
}

// firstID is the id of the first VM ever created, removed or not.
func (e *env) firstID() string {
	e.t.Helper()
	w := e.store.allWrites()
	if len(w) == 0 {
		e.t.Fatal("no vm was ever recorded")
	}
	return w[0].ID
}

// handles is the VM's handles.json.
func (e *env) handles(vm model.VMRecord) (vmHandles, bool) {
	e.t.Helper()
	h, ok, err := readHandles(vm.Runtime.VMDir)
	if err != nil {
		e.t.Fatal(err)
	}
	return h, ok
}

// assertNothingLeft: the VM with id has no row, directory, tap, NAT,
// dm-snapshot, VMM or pinned host key left.
func (e *env) assertNothingLeft(id string) {
	e.t.Helper()
	if _, err := e.store.GetVM(context.Background(), id); err == nil {
		e.t.Errorf("vm %s still has a row", id)
	}
	if _, err := os.Stat(filepath.Join(e.layout.VMsDir, id)); !errors.Is(err, os.ErrNotExist) {
		e.t.Errorf("vm directory still there (%v)", err)
	}
	e.assertReleased()
	if e.s.knownHosts.Get(id) != nil {
		e.t.Errorf("host key of %s still pinned", id)
	}
}

// assertReleased: no tap held, no NAT on, no dm-snapshot, no VMM.
func (e *env) assertReleased() {
	e.t.Helper()
	if held := e.taps.held(); len(held) != 0 {
		e.t.Errorf("taps not returned: %v", held)
	}
	if on := e.helper.natOn(); len(on) != 0 {
		e.t.Errorf("NAT still on for %v", on)
	}
	if dm := e.helper.attached(); len(dm) != 0 {
		e.t.Errorf("dm-snapshots still attached: %v", dm)
	}
	if n := e.drv.live(); n != 0 {
		e.t.Errorf("%d VMM processes still run", n)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func removeParams(name string, force bool) api.VMRemoveParams {
	return api.VMRemoveParams{Name: name, Force: force}
}
