// Package vms is the VM lifecycle service: create, boot, stop, set and
// remove VMs, watch their VMMs, and settle, when bangerd starts, what a
// previous daemon left running or half made. It owns the VM rows of the
// store, each VM's directory and handles.json, banger's known_hosts and
// the per-VM locks. What it needs from elsewhere — taps, the root
// helper, the VMM drivers — it takes as small interfaces and a map
// handed in by the daemon's wiring; it imports no other service.
package vms

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/paths"
	"banger/internal/vmm"
)

// Store is the part of the store the VM service uses: its own VM rows,
// and the images they boot, read only.
type Store interface {
	CreateVM(ctx context.Context, vm model.VMRecord) error
	GetVM(ctx context.Context, id string) (model.VMRecord, error)
	FindVM(ctx context.Context, ref string) (model.VMRecord, error)
	ListVMs(ctx context.Context) ([]model.VMRecord, error)
	UpdateVM(ctx context.Context, vm model.VMRecord) error
	DeleteVM(ctx context.Context, id string) error
	GetImage(ctx context.Context, id string) (model.Image, error)
	FindImage(ctx context.Context, ref string) (model.Image, error)
	ListImages(ctx context.Context) ([]model.Image, error)
}

// Taps hands out the taps VMs are wired to (the daemon's tap pool).
type Taps interface {
	Take(ctx context.Context) (name string, hit bool, err error)
	Return(ctx context.Context, name string) error
}

// Helper is what the VM service asks of banger-helper.
type Helper interface {
	Status(ctx context.Context) (helperapi.StatusResult, error)
	EnableNAT(ctx context.Context, tap, guestIP string) (helperapi.NATEntry, error)
	DisableNAT(ctx context.Context, guestIP string) error
	AttachOverlay(ctx context.Context, vmID string, image, cow *os.File) (helperapi.OverlayInfo, error)
	DetachOverlay(ctx context.Context, dmName string) error
}

// Hooks are told when a VM starts running and when it stops (by banger
// or on its own): where port forwards, DNS and stats attach. Either may
// be nil. They run synchronously, under the VM's lock, and must not
// block.
type Hooks struct {
	Started func(ctx context.Context, vm model.VMRecord)
	Stopped func(ctx context.Context, vm model.VMRecord)
}

// Drivers are the VMM drivers this bangerd has, by name, and what
// `vmm = auto` means on this host.
type Drivers struct {
	ByName     map[string]vmm.Driver
	Auto       string
	AutoReason string
}

// Deps is what the service is built from.
type Deps struct {
	Config  model.DaemonConfig
	Layout  paths.Layout
	Store   Store
	Drivers Drivers
	Taps    Taps
	Helper  Helper
	Ops     *operation.Registry
	Logger  *slog.Logger
	// Reflink says whether the VMs directory clones files (FICLONE).
	Reflink bool
	Hooks   Hooks
	// Clock is model.Now unless a test sets it.
	Clock func() time.Time
}

// Service is the VM lifecycle service.
type Service struct {
	cfg     model.DaemonConfig
	layout  paths.Layout
	store   Store
	drivers Drivers
	taps    Taps
	helper  Helper
	ops     *operation.Registry
	logger  *slog.Logger
	reflink bool
	hooks   Hooks
	now     func() time.Time

	knownHosts *knownHosts
	// sshPort is the port a guest's SSH server listens on: 22, unless a
	// test points the service at a server of its own.
	sshPort string
	// bgCtx is the service's lifetime, for work no request owns (a VMM
	// that exits on its own).
	bgCtx context.Context

	allocMu   sync.Mutex // serialises address and name allocation
	vmLocks   sync.Map   // vm id → *sync.Mutex
	monitorMu sync.Mutex
	monitors  map[string]context.CancelFunc // vm id → stop watching its VMM
	dm        dmCache
}

// New builds the service. ctx is the daemon's lifetime: VMMs are watched
// until it ends (they keep running after; the next daemon adopts them).
func New(ctx context.Context, d Deps) *Service {
	if d.Clock == nil {
		d.Clock = model.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg: d.Config, layout: d.Layout, store: d.Store, drivers: d.Drivers,
		taps: d.Taps, helper: d.Helper, ops: d.Ops, logger: d.Logger,
		reflink: d.Reflink, hooks: d.Hooks, now: d.Clock,
		knownHosts: &knownHosts{path: filepath.Join(d.Layout.StateDir, "known_hosts")},
		sshPort:    "22",
		bgCtx:      context.WithoutCancel(ctx),
		monitors:   map[string]context.CancelFunc{},
	}
}

// Close stops watching VMMs; the VMs keep running.
func (s *Service) Close() {
	s.monitorMu.Lock()
	defer s.monitorMu.Unlock()
	for id, cancel := range s.monitors {
		cancel()
		delete(s.monitors, id)
	}
}

// KnownHostsPath is banger's known_hosts file, where VMs' host keys are
// pinned.
func (s *Service) KnownHostsPath() string { return s.knownHosts.path }

// lockVM serialises lifecycle operations on one VM.
func (s *Service) lockVM(id string) func() {
	v, _ := s.vmLocks.LoadOrStore(id, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// findVM resolves a user's reference and locks the VM; the caller must
// call the returned unlock.
func (s *Service) findVM(ctx context.Context, ref string) (model.VMRecord, func(), error) {
	vm, err := s.store.FindVM(ctx, ref)
	if err != nil {
		return vm, func() {}, err
	}
	unlock := s.lockVM(vm.ID)
	// Re-read under the lock: another operation may have changed it.
	if vm, err = s.store.GetVM(ctx, vm.ID); err != nil {
		unlock()
		return vm, func() {}, err
	}
	return vm, unlock, nil
}

// save writes vm's row. The record's state is its one state: the
// runtime's mirror of it is set here, so what is returned to a caller
// never disagrees with itself.
func (s *Service) save(ctx context.Context, vm *model.VMRecord) error {
	vm.Runtime.State = vm.State
	vm.UpdatedAt = s.now()
	return s.store.UpdateVM(ctx, *vm)
}

// setState is the one place a VM's state changes: it records the state
// and the reason (lastErr, "" for none) and tells the hooks when the VM
// started or stopped running.
func (s *Service) setState(ctx context.Context, vm *model.VMRecord, state model.VMState, lastErr string) error {
	was := vm.State
	vm.State = state
	vm.Runtime.LastError = lastErr
	if err := s.save(ctx, vm); err != nil {
		return err
	}
	switch {
	case state == model.VMStateRunning && was != model.VMStateRunning && s.hooks.Started != nil:
		s.hooks.Started(ctx, *vm)
	case state != model.VMStateRunning && was == model.VMStateRunning && s.hooks.Stopped != nil:
		s.hooks.Stopped(ctx, *vm)
	}
	return nil
}

// Choice is what a VM created now without --vmm gets, and why.
func (s *Service) Choice() api.VMMChoice {
	c := api.VMMChoice{Config: s.cfg.VMM, Auto: s.drivers.Auto, AutoReason: s.drivers.AutoReason}
	if c.Config == "" {
		c.Config = model.VMMAuto
	}
	c.Driver, _ = s.pickDriver("")
	return c
}

// pickDriver resolves a VMM choice ("", "auto", a driver's name) to a
// driver this daemon has.
func (s *Service) pickDriver(choice string) (string, error) {
	if choice == "" {
		choice = s.cfg.VMM
	}
	if choice == "" || choice == model.VMMAuto {
		return s.drivers.Auto, nil
	}
	if _, ok := s.drivers.ByName[choice]; !ok {
		return "", errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("--vmm %q: this bangerd has %s", choice, strings.Join(s.DriverNames(), " and ")))
	}
	return choice, nil
}

// driverInstalled refuses a driver whose program is not there, before a
// create makes anything: `--vmm firecracker` without Firecracker.
func (s *Service) driverInstalled(name string) error {
	drv, err := s.driver(name)
	if err != nil {
		return err
	}
	if b, ok := drv.(interface{ BinaryPath() (string, error) }); ok {
		if _, err := b.BinaryPath(); err != nil {
			return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("vmm %s: %w; install it, set firecracker_bin in %s, or use --vmm qemu", name, err, s.layout.ConfigFile))
		}
	}
	return nil
}

func (s *Service) driver(name string) (vmm.Driver, error) {
	drv, ok := s.drivers.ByName[name]
	if !ok {
		return nil, fmt.Errorf("vm uses the %q VMM, which this bangerd does not have: %w", name, errdefs.ErrUnavailable)
	}
	return drv, nil
}

// DriverNames are the drivers this bangerd has, quoted, sorted.
func (s *Service) DriverNames() []string {
	var names []string
	for n := range s.drivers.ByName {
		names = append(names, strconv.Quote(n))
	}
	slices.Sort(names)
	return names
}
