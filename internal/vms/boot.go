package vms

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"banger/internal/config"
	"banger/internal/disk"
	"banger/internal/guestapi"
	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/vmm"
)

// baseCmdline is what every guest's kernel gets besides what its driver
// and the guest program need.
const baseCmdline = "console=ttyS0 reboot=k panic=1 root=/dev/vda rw rootfstype=ext4"

// progress is what a boot reports through: an operation's reporter for
// a create or StartBegin, nothing for Start and Restart.
type progress interface {
	Stage(name string)
	Detail(msg string, frac float64)
}

type noProgress struct{}

func (noProgress) Stage(string)           {}
func (noProgress) Detail(string, float64) {}

// booting is one boot of a VM: what it holds so far, so that a failure
// releases exactly that.
type booting struct {
	s      *Service
	vm     model.VMRecord
	h      vmHandles
	driver vmm.Driver
	img    model.Image
}

// boot takes a tap, enables NAT when asked, builds the dm-snapshot when
// the VM has one, starts the VMM and waits for the guest's SSH server.
// Each afterStart runs in the background once the VMM runs. Each handle
// is recorded (row and handles.json) before the next thing is made; on
// failure everything made here is released again and the error says
// where to look.
func (s *Service) boot(ctx context.Context, vm model.VMRecord, rep progress, afterStart ...func()) (model.VMRecord, error) {
	driver, err := s.driver(vm.Runtime.VMM)
	if err != nil {
		return vm, err
	}
	img, err := s.store.GetImage(ctx, vm.ImageID)
	if err != nil {
		return vm, err
	}
	// What a failed stop or start could not release (the VM is in error
	// with the reason) goes first: a new tap must never replace a
	// recorded one, which would then be leaked with its NAT rule.
	if holdsAnything(vm) {
		if err := s.teardown(ctx, vm, true); err != nil {
			return vm, fmt.Errorf("release what vm %s still holds from before: %w", vm.Name, err)
		}
		if vm, err = s.store.GetVM(ctx, vm.ID); err != nil {
			return vm, err
		}
	}
	b := &booting{s: s, vm: vm, driver: driver, img: img}
	if err := b.run(ctx, rep, afterStart); err != nil {
		return b.vm, b.fail(ctx, err)
	}
	return b.vm, nil
}

func (b *booting) run(ctx context.Context, rep progress, afterStart []func()) error {
	rep.Stage(stageTap)
	if err := b.takeTap(ctx, rep); err != nil {
		return err
	}
	if err := b.enableNAT(ctx); err != nil {
		return err
	}
	if err := b.attachOverlay(ctx, rep); err != nil {
		return err
	}
	rep.Stage(stageBoot)
	if err := b.startVMM(ctx, rep); err != nil {
		return err
	}
	for _, f := range afterStart {
		go f()
	}
	rep.Stage(stageWaitSSH)
	return b.s.waitSSH(ctx, b.vm, b.h.VMM)
}

// record writes what the boot holds to the VM's row and handles.json,
// before the next thing is made.
func (b *booting) record(ctx context.Context) error {
	if err := b.s.save(ctx, &b.vm); err != nil {
		return err
	}
	return writeHandles(b.vm.Runtime.VMDir, b.h)
}

func (b *booting) takeTap(ctx context.Context, rep progress) error {
	tap, hit, err := b.s.taps.Take(ctx)
	if err != nil {
		return fmt.Errorf("take a tap: %w", err)
	}
	b.h.Tap = tap
	b.vm.Runtime.TapDevice = tap
	if err := b.record(ctx); err != nil {
		return err
	}
	rep.Detail(fmt.Sprintf("%s (from the pool: %v)", tap, hit), -1)
	return nil
}

func (b *booting) enableNAT(ctx context.Context) error {
	if !b.vm.Spec.NATEnabled {
		return nil
	}
	if _, err := b.s.helper.EnableNAT(ctx, b.h.Tap, b.vm.Runtime.GuestIP); err != nil {
		return fmt.Errorf("enable NAT: %w", err)
	}
	b.h.NATIP = b.vm.Runtime.GuestIP
	return writeHandles(b.vm.Runtime.VMDir, b.h)
}

// attachOverlay has the helper build the VM's dm-snapshot, when it has
// one, over the image's root file system and the VM's copy-on-write
// store, passing both open: the helper never opens a path banger names.
func (b *booting) attachOverlay(ctx context.Context, rep progress) error {
	vm := &b.vm
	if disk.OverlayStrategy(vm.Runtime.OverlayStrategy) != disk.OverlayDMSnapshot {
		return nil
	}
	// Recorded before it exists: its name is known, and a daemon that
	// dies mid-attach leaves its successor something to remove.
	b.h.DMName = helperapi.DMName(uint32(os.Getuid()), vm.ID)
	vm.Runtime.DMName = b.h.DMName
	if err := b.record(ctx); err != nil {
		return err
	}
	base, err := os.Open(b.img.RootfsPath)
	if err != nil {
		return fmt.Errorf("system overlay (dm-snapshot): image root file system: %w", err)
	}
	defer base.Close()
	cow, err := os.OpenFile(vm.Runtime.SystemOverlay, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("system overlay (dm-snapshot): copy-on-write store: %w", err)
	}
	defer cow.Close()
	info, err := b.s.helper.AttachOverlay(ctx, vm.ID, base, cow)
	if err != nil {
		return fmt.Errorf("system overlay (dm-snapshot): %w", err)
	}
	b.h.BaseLoop, b.h.COWLoop = info.BaseLoop, info.COWLoop
	vm.Runtime.BaseLoop, vm.Runtime.COWLoop, vm.Runtime.DMDev = info.BaseLoop, info.COWLoop, info.DMDev
	if err := b.record(ctx); err != nil {
		return err
	}
	rep.Detail(fmt.Sprintf("dm-snapshot %s over %s and %s", info.DMDev, info.BaseLoop, info.COWLoop), -1)
	return nil
}

func (b *booting) startVMM(ctx context.Context, rep progress) error {
	spec, err := b.s.vmmSpec(b.vm, b.img)
	if err != nil {
		return err
	}
	handle, err := b.driver.Start(ctx, spec)
	if err != nil {
		var se *vmm.StartError
		if !errors.As(err, &se) { // a StartError names the driver already
			err = fmt.Errorf("start %s: %w", b.driver.Name(), err)
		}
		return err
	}
	b.h.VMM = handle
	// The moment the VMM runs the guest, configured: what the
	// control-plane benchmark measures to.
	b.s.logger.InfoContext(ctx, "vmm started", "vm_id", b.vm.ID, "vm_name", b.vm.Name,
		"driver", b.driver.Name(), "pid", handle.PID)
	if err := writeHandles(b.vm.Runtime.VMDir, b.h); err != nil {
		return err
	}
	// A create's VM stays marked "create in progress" until its create
	// ends (create clears it): one cut off while its guest boots has never
	// answered SSH, and recovery tears it down like a create cut off at
	// any other stage rather than adopting it.
	lastErr := ""
	if isCreateInFlight(b.vm) {
		lastErr = b.vm.Runtime.LastError
	}
	if err := b.s.setState(ctx, &b.vm, model.VMStateRunning, lastErr); err != nil {
		return err
	}
	b.s.startMonitor(b.vm, b.h)
	rep.Detail(fmt.Sprintf("%s pid %d", b.driver.Name(), handle.PID), -1)
	return nil
}

// fail releases what the boot made, under a context of its own (a
// cancelled request must not cut the clean-up short), and returns err
// with what the release could not undo and where to look.
func (b *booting) fail(ctx context.Context, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupLimit)
	defer cancel()
	b.s.stopMonitor(b.vm.ID)
	started := b.h.VMM.PID != 0
	if started {
		if kerr := b.s.halt(ctx, b.driver, b.h.VMM, 0, nil); kerr != nil {
			err = fmt.Errorf("%w (and stopping the VMM failed: %v)", err, kerr)
		}
	}
	if rerr := b.s.release(ctx, &b.vm, b.h); rerr != nil {
		err = fmt.Errorf("%w (and releasing what the start made failed: %v)", err, rerr)
	}
	if started {
		// The guest's console says why a boot went wrong.
		err = oplog.AnnotateLogPath(err, b.vm.Runtime.LogPath)
	}
	return err
}

// rootDisk is what the VMM opens as the guest's root: the dm-snapshot's
// device, or the cloned file.
func rootDisk(vm model.VMRecord) string {
	if disk.OverlayStrategy(vm.Runtime.OverlayStrategy) == disk.OverlayDMSnapshot {
		return vm.Runtime.DMDev
	}
	return vm.Runtime.SystemOverlay
}

// vmmSpec is what the driver needs to boot vm from img.
func (s *Service) vmmSpec(vm model.VMRecord, img model.Image) (vmm.Spec, error) {
	bridge, err := config.BridgePrefix(s.cfg)
	if err != nil {
		return vmm.Spec{}, err
	}
	ip, err := netip.ParseAddr(vm.Runtime.GuestIP)
	if err != nil {
		return vmm.Spec{}, fmt.Errorf("vm %s: guest ip %q: %w", vm.Name, vm.Runtime.GuestIP, err)
	}
	gc := guestapi.Config{Address: netip.PrefixFrom(ip, bridge.Bits()), Gateway: bridge.Addr(), Hostname: vm.Name}
	if s.cfg.DefaultDNS != "" {
		if gc.DNS, err = netip.ParseAddr(s.cfg.DefaultDNS); err != nil {
			return vmm.Spec{}, fmt.Errorf("default_dns %q: %w", s.cfg.DefaultDNS, err)
		}
	}
	guestArgs, err := gc.Cmdline()
	if err != nil {
		return vmm.Spec{}, err
	}
	return vmm.Spec{
		VMID: vm.ID, Name: vm.Name, Dir: vm.Runtime.VMDir,
		KernelPath: img.KernelPath, InitrdPath: img.InitrdPath,
		Cmdline:   baseCmdline + " " + guestArgs,
		VCPUs:     vm.Spec.VCPUCount,
		MemoryMiB: vm.Spec.MemoryMiB,
		RootDisk:  rootDisk(vm),
		WorkDisk:  vm.Runtime.WorkDiskPath,
		Tap:       vm.Runtime.TapDevice,
		MAC:       vm.Runtime.MAC,
		VSockCID:  vm.Runtime.VSockCID, VSockPath: vm.Runtime.VSockPath,
		ConsoleLog:    vm.Runtime.LogPath,
		MetricsPath:   vm.Runtime.MetricsPath,
		ControlSocket: vm.Runtime.APISockPath,
	}, nil
}
