package vms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/model"
)

// The fakes stand in for what the daemon wires into the VM service: the
// store, the tap pool and the root helper, all in memory. Each records
// what it was asked and any misuse — returning a tap twice, disabling a
// NAT that is not on — as a problem the test fails on at its end. The
// VMM driver and the guest's SSH server are in fakes_vmm_test.go (the
// files stay under the 500-line rule), the test environment that wires
// them in env_test.go.

// TestMain puts a fake mkfs.ext4 first on PATH: the work disk is staged
// by the real disk package, and the fake copies the staged tree to
// "worktree" next to the image (where a test finds the guest's host
// key) instead of making a file system. FAKE_MKFS_FAIL, when set, makes
// it fail with that message.
func TestMain(m *testing.M) {
	bin, err := os.MkdirTemp("", "vms-fakebin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	script := `#!/bin/sh
if [ -n "$FAKE_MKFS_FAIL" ]; then echo "$FAKE_MKFS_FAIL" >&2; exit 1; fi
dir=; prev=; last=
while [ $# -gt 0 ]; do
	case "$1" in -d) dir="$2"; shift;; esac
	prev="$last"; last="$1"; shift
done
out="$(dirname "$prev")/worktree"
mkdir -p "$out" && cp -a "$dir/." "$out/"
`
	if err := os.WriteFile(filepath.Join(bin, "mkfs.ext4"), []byte(script), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	code := m.Run()
	os.RemoveAll(bin)
	os.Exit(code)
}

// problems collects misuse of a fake, reported when the test ends.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) report(t *testing.T) {
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.list {
			t.Error(s)
		}
	})
}

// fakeStore keeps VM rows, images and operations in maps. writes is
// every VM row written (create and update), in order.
type fakeStore struct {
	mu     sync.Mutex
	vms    map[string]model.VMRecord
	images map[string]model.Image
	ops    map[string]model.Operation
	writes []model.VMRecord

	// failDelete and failUpdate, when set, make DeleteVM and UpdateVM
	// fail with them.
	failDelete error
	failUpdate error
}

func newFakeStore() *fakeStore {
	return &fakeStore{vms: map[string]model.VMRecord{}, images: map[string]model.Image{}, ops: map[string]model.Operation{}}
}

func (f *fakeStore) CreateVM(_ context.Context, vm model.VMRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vms[vm.ID]; ok {
		return fmt.Errorf("vm %s: %w", vm.ID, errdefs.ErrConflict)
	}
	for _, o := range f.vms {
		if o.Name == vm.Name {
			return fmt.Errorf("vm %s: %w", vm.Name, errdefs.ErrConflict)
		}
	}
	f.vms[vm.ID] = vm
	f.writes = append(f.writes, vm)
	return nil
}

func (f *fakeStore) GetVM(_ context.Context, id string) (model.VMRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vm, ok := f.vms[id]
	if !ok {
		return vm, fmt.Errorf("vm %q: %w", id, errdefs.ErrNotFound)
	}
	return vm, nil
}

// FindVM resolves a name, an id, or a unique id prefix of at least four
// characters, as the real store does.
func (f *fakeStore) FindVM(_ context.Context, ref string) (model.VMRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, vm := range f.vms {
		if vm.Name == ref {
			return vm, nil
		}
	}
	if vm, ok := f.vms[ref]; ok {
		return vm, nil
	}
	var found []model.VMRecord
	for id, vm := range f.vms {
		if len(ref) >= 4 && strings.HasPrefix(id, ref) {
			found = append(found, vm)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return model.VMRecord{}, fmt.Errorf("vm %q: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeStore) ListVMs(context.Context) ([]model.VMRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.VMRecord
	for _, vm := range f.vms {
		out = append(out, vm)
	}
	slices.SortFunc(out, func(a, b model.VMRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (f *fakeStore) UpdateVM(_ context.Context, vm model.VMRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failUpdate != nil {
		return f.failUpdate
	}
	if _, ok := f.vms[vm.ID]; !ok {
		return fmt.Errorf("vm %q: %w", vm.ID, errdefs.ErrNotFound)
	}
	f.vms[vm.ID] = vm
	f.writes = append(f.writes, vm)
	return nil
}

func (f *fakeStore) DeleteVM(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failDelete != nil {
		return f.failDelete
	}
	if _, ok := f.vms[id]; !ok {
		return fmt.Errorf("vm %q: %w", id, errdefs.ErrNotFound)
	}
	delete(f.vms, id)
	return nil
}

func (f *fakeStore) GetImage(_ context.Context, id string) (model.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok {
		return img, fmt.Errorf("image %q: %w", id, errdefs.ErrNotFound)
	}
	return img, nil
}

func (f *fakeStore) FindImage(_ context.Context, ref string) (model.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, img := range f.images {
		if img.Name == ref || img.ID == ref {
			return img, nil
		}
	}
	return model.Image{}, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

func (f *fakeStore) ListImages(context.Context) ([]model.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Image
	for _, img := range f.images {
		out = append(out, img)
	}
	return out, nil
}

// PutOperation and GetOperation make the fake the operation registry's
// store too.
func (f *fakeStore) PutOperation(_ context.Context, op model.Operation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops[op.ID] = op
	return nil
}

func (f *fakeStore) GetOperation(_ context.Context, id string) (model.Operation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[id]
	if !ok {
		return op, fmt.Errorf("operation %q: %w", id, errdefs.ErrNotFound)
	}
	return op, nil
}

// allWrites is every VM row written so far.
func (f *fakeStore) allWrites() []model.VMRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// put stores a row as a previous daemon left it, without recording a
// write.
func (f *fakeStore) put(vm model.VMRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vms[vm.ID] = vm
}

func (f *fakeStore) setFailDelete(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failDelete = err
}

// fakeTaps is the tap pool: it hands out tap-fakeN and takes them back.
type fakeTaps struct {
	problems
	mu       sync.Mutex
	next     int
	inUse    map[string]bool
	returned []string
	takeErr  error
}

func newFakeTaps(t *testing.T) *fakeTaps {
	f := &fakeTaps{inUse: map[string]bool{}}
	f.report(t)
	return f
}

func (f *fakeTaps) Take(context.Context) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.takeErr != nil {
		return "", false, f.takeErr
	}
	f.next++
	name := fmt.Sprintf("tap-fake%d", f.next)
	f.inUse[name] = true
	return name, true, nil
}

func (f *fakeTaps) Return(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.returned = append(f.returned, name)
	if !f.inUse[name] {
		f.add("tap %s returned but not taken (twice?)", name)
		return fmt.Errorf("tap %s: %w", name, errdefs.ErrNotFound)
	}
	delete(f.inUse, name)
	return nil
}

// held is the taps taken and not returned.
func (f *fakeTaps) held() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name := range f.inUse {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// fakeHelper is banger-helper: NAT entries and dm-snapshots in maps.
type fakeHelper struct {
	problems
	mu         sync.Mutex
	dmSnapshot bool
	nat        map[string]string // guest ip → tap
	overlays   map[string]bool   // dm name → attached
	calls      []string

	enableErr, disableErr, attachErr error
}

func newFakeHelper(t *testing.T) *fakeHelper {
	f := &fakeHelper{dmSnapshot: true, nat: map[string]string{}, overlays: map[string]bool{}}
	f.report(t)
	return f
}

func (f *fakeHelper) Status(context.Context) (helperapi.StatusResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := helperapi.StatusResult{DMSnapshot: f.dmSnapshot}
	for ip, tap := range f.nat {
		st.NAT = append(st.NAT, helperapi.NATEntry{GuestIP: ip, Tap: tap})
	}
	return st, nil
}

func (f *fakeHelper) EnableNAT(_ context.Context, tap, guestIP string) (helperapi.NATEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "enable-nat "+tap+" "+guestIP)
	if f.enableErr != nil {
		return helperapi.NATEntry{}, f.enableErr
	}
	if tap == "" {
		f.add("EnableNAT for %s without a tap", guestIP)
	}
	f.nat[guestIP] = tap
	return helperapi.NATEntry{}, nil
}

func (f *fakeHelper) DisableNAT(_ context.Context, guestIP string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "disable-nat "+guestIP)
	if f.disableErr != nil {
		return f.disableErr
	}
	if _, ok := f.nat[guestIP]; !ok {
		return fmt.Errorf("nat for %s: %w", guestIP, errdefs.ErrNotFound)
	}
	delete(f.nat, guestIP)
	return nil
}

func (f *fakeHelper) AttachOverlay(_ context.Context, vmID string, image, cow *os.File) (helperapi.OverlayInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := helperapi.DMName(uint32(os.Getuid()), vmID)
	f.calls = append(f.calls, "attach-overlay "+name)
	if image == nil || cow == nil {
		f.add("AttachOverlay for %s without both files", vmID)
	}
	if f.attachErr != nil {
		return helperapi.OverlayInfo{}, f.attachErr
	}
	f.overlays[name] = true
	return helperapi.OverlayInfo{BaseLoop: "/dev/loop1", COWLoop: "/dev/loop2", DMDev: "/dev/mapper/" + name}, nil
}

func (f *fakeHelper) DetachOverlay(_ context.Context, dmName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "detach-overlay "+dmName)
	if !f.overlays[dmName] {
		return fmt.Errorf("dm %s: %w", dmName, errdefs.ErrNotFound)
	}
	delete(f.overlays, dmName)
	return nil
}

// natOn is the guest addresses NAT is on for.
func (f *fakeHelper) natOn() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for ip := range f.nat {
		out = append(out, ip)
	}
	return out
}

func (f *fakeHelper) attached() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name := range f.overlays {
		out = append(out, name)
	}
	return out
}

func (f *fakeHelper) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeHelper) set(fn func(f *fakeHelper)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// hookLog records the Started and Stopped hooks, by VM id.
type hookLog struct {
	mu      sync.Mutex
	started []string
	stopped []string
}

func (h *hookLog) hooks() Hooks {
	return Hooks{
		Started: func(_ context.Context, vm model.VMRecord) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.started = append(h.started, vm.ID)
		},
		Stopped: func(_ context.Context, vm model.VMRecord) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.stopped = append(h.stopped, vm.ID)
		},
	}
}

// counts is how often each hook fired for id.
func (h *hookLog) counts(id string) (started, stopped int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.started {
		if s == id {
			started++
		}
	}
	for _, s := range h.stopped {
		if s == id {
			stopped++
		}
	}
	return started, stopped
}
