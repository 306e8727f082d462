package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/internal/disk"
	"banger/internal/errdefs"
	"banger/internal/guestapi"
	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/rpc"
	"banger/internal/sshkey"
	"banger/internal/vmm"
)

const (
	// sshReadyLimit bounds the wait for a booting guest's SSH server.
	// Under software emulation a Debian guest takes 10-20 s; a loaded
	// host can double that.
	sshReadyLimit = 3 * time.Minute
	// baseCmdline is what every guest's kernel gets besides what its
	// driver and the guest program need.
	baseCmdline = "console=ttyS0 reboot=k panic=1 root=/dev/vda rw rootfstype=ext4"
)

// progress is what bootVM reports through: an operation's reporter for a
// create, a no-op for a start.
type progress interface {
	Stage(name string)
	Detail(msg string, frac float64)
}

type noProgress struct{}

func (noProgress) Stage(string)           {}
func (noProgress) Detail(string, float64) {}

// lockVM serialises lifecycle operations on one VM.
func (d *Daemon) lockVM(id string) func() {
	v, _ := d.vmLocks.LoadOrStore(id, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// bootVM takes a tap, enables NAT when asked, starts the VMM and waits
// for the guest's SSH server. Each afterStart runs in the background once
// the VMM runs. Each handle is recorded (row and
// handles.json) before the next thing is made; on failure everything
// made here is released again and the error says where to look.
func (d *Daemon) bootVM(ctx context.Context, vm model.VMRecord, rep progress, afterStart ...func()) (model.VMRecord, error) {
	driver, err := d.driver(vm.Runtime.VMM)
	if err != nil {
		return vm, err
	}
	img, err := d.store.GetImage(ctx, vm.ImageID)
	if err != nil {
		return vm, err
	}
	var h vmHandles
	fail := func(err error) (model.VMRecord, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupLimit)
		defer cancel()
		d.stopMonitor(vm.ID)
		if h.VMM.PID != 0 {
			driver.Kill(h.VMM)
			vmm.Wait(cctx, h.VMM)
		}
		started := h.VMM.PID != 0
		if terr := d.release(cctx, &vm, h); terr != nil {
			err = fmt.Errorf("%w (and releasing what the start made failed: %v)", err, terr)
		}
		if started {
			// The guest's console says why a boot went wrong.
			err = annotateLogPath(err, vm.Runtime.LogPath)
		}
		return vm, err
	}

	rep.Stage(stageTap)
	tap, hit, err := d.tapPool.Take(ctx)
	if err != nil {
		return vm, fmt.Errorf("take a tap: %w", err)
	}
	h.Tap = tap
	vm.Runtime.TapDevice = tap
	vm.UpdatedAt = model.Now()
	if err := d.store.UpdateVM(ctx, vm); err != nil {
		return fail(err)
	}
	if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
		return fail(err)
	}
	rep.Detail(fmt.Sprintf("%s (from the pool: %v)", tap, hit), -1)
	if vm.Spec.NATEnabled {
		if _, err := d.helper.EnableNAT(ctx, tap, vm.Runtime.GuestIP); err != nil {
			return fail(fmt.Errorf("enable NAT: %w", err))
		}
		h.NATIP = vm.Runtime.GuestIP
		if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
			return fail(err)
		}
	}

	if disk.OverlayStrategy(vm.Runtime.OverlayStrategy) == disk.OverlayDMSnapshot {
		// Recorded before it exists: its name is known, and a daemon that
		// dies mid-attach leaves its successor something to remove.
		h.DMName = helperapi.DMName(uint32(os.Getuid()), vm.ID)
		vm.Runtime.DMName = h.DMName
		if err := d.store.UpdateVM(ctx, vm); err != nil {
			return fail(err)
		}
		if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
			return fail(err)
		}
		info, err := d.attachOverlay(ctx, vm, img)
		if err != nil {
			return fail(fmt.Errorf("system overlay (dm-snapshot): %w", err))
		}
		h.BaseLoop, h.COWLoop = info.BaseLoop, info.COWLoop
		vm.Runtime.BaseLoop, vm.Runtime.COWLoop, vm.Runtime.DMDev = info.BaseLoop, info.COWLoop, info.DMDev
		if err := d.store.UpdateVM(ctx, vm); err != nil {
			return fail(err)
		}
		if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
			return fail(err)
		}
		rep.Detail(fmt.Sprintf("dm-snapshot %s over %s and %s", info.DMDev, info.BaseLoop, info.COWLoop), -1)
	}

	rep.Stage(stageBoot)
	spec, err := d.vmmSpec(vm, img)
	if err != nil {
		return fail(err)
	}
	handle, err := driver.Start(ctx, spec)
	if err != nil {
		var se *vmm.StartError
		if !errors.As(err, &se) { // a StartError names the driver already
			err = fmt.Errorf("start %s: %w", driver.Name(), err)
		}
		return fail(err)
	}
	h.VMM = handle
	// The moment the VMM runs the guest, configured: what the
	// control-plane benchmark measures to.
	d.logger.Info("vmm started", "op_id", rpc.OpIDFromContext(ctx), "vm_id", vm.ID, "vm_name", vm.Name,
		"driver", driver.Name(), "pid", handle.PID)
	if err := writeHandles(vm.Runtime.VMDir, h); err != nil {
		return fail(err)
	}
	vm.State = model.VMStateRunning
	vm.Runtime.LastError = ""
	vm.UpdatedAt = model.Now()
	if err := d.store.UpdateVM(ctx, vm); err != nil {
		return fail(err)
	}
	d.startMonitor(vm, h)
	for _, f := range afterStart {
		go f()
	}
	rep.Detail(fmt.Sprintf("%s pid %d", driver.Name(), handle.PID), -1)

	rep.Stage(stageWaitSSH)
	if err := d.waitSSH(ctx, vm, handle); err != nil {
		return fail(err)
	}
	return vm, nil
}

// attachOverlay has the helper build vm's dm-snapshot over the image's
// root file system and the VM's copy-on-write store, passing both open:
// the helper never opens a path banger names.
func (d *Daemon) attachOverlay(ctx context.Context, vm model.VMRecord, img model.Image) (helperapi.OverlayInfo, error) {
	base, err := os.Open(img.RootfsPath)
	if err != nil {
		return helperapi.OverlayInfo{}, fmt.Errorf("image root file system: %w", err)
	}
	defer base.Close()
	cow, err := os.OpenFile(vm.Runtime.SystemOverlay, os.O_RDWR, 0)
	if err != nil {
		return helperapi.OverlayInfo{}, fmt.Errorf("copy-on-write store: %w", err)
	}
	defer cow.Close()
	return d.helper.AttachOverlay(ctx, vm.ID, base, cow)
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
func (d *Daemon) vmmSpec(vm model.VMRecord, img model.Image) (vmm.Spec, error) {
	bridge, err := bridgePrefix(d.cfg)
	if err != nil {
		return vmm.Spec{}, err
	}
	ip, err := netip.ParseAddr(vm.Runtime.GuestIP)
	if err != nil {
		return vmm.Spec{}, fmt.Errorf("vm %s: guest ip %q: %w", vm.Name, vm.Runtime.GuestIP, err)
	}
	gc := guestapi.Config{Address: netip.PrefixFrom(ip, bridge.Bits()), Gateway: bridge.Addr(), Hostname: vm.Name}
	if dns, err := netip.ParseAddr(d.cfg.DefaultDNS); err == nil {
		gc.DNS = dns
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

// waitSSH waits until the guest's SSH server accepts the daemon's key
// and shows the host key pinned for this VM.
func (d *Daemon) waitSSH(ctx context.Context, vm model.VMRecord, h vmm.Handle) error {
	key, err := sshkey.Load(d.cfg.SSHKeyPath)
	if err != nil {
		return fmt.Errorf("daemon ssh key: %w", err)
	}
	pinned := d.knownHosts.Get(vm.ID)
	if pinned == nil {
		return fmt.Errorf("vm %s has no pinned host key: %w", vm.Name, errdefs.ErrConflict)
	}
	cfg := &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key.Signer)},
		HostKeyCallback: ssh.FixedHostKey(pinned),
		Timeout:         5 * time.Second,
	}
	addr := net.JoinHostPort(vm.Runtime.GuestIP, "22")
	ctx, cancel := context.WithTimeout(ctx, sshReadyLimit)
	defer cancel()
	var last error
	for {
		if !vmm.Alive(h) {
			return fmt.Errorf("the VMM exited while the guest booted (last ssh error: %v)", last)
		}
		var dialer net.Dialer
		dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := dialer.DialContext(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
			if err == nil {
				ssh.NewClient(c, chans, reqs).Close()
				return nil
			}
			conn.Close()
			last = err
			if strings.Contains(err.Error(), "host key mismatch") {
				return fmt.Errorf("vm %s answers with a host key other than the one banger gave it: %w", vm.Name, errdefs.ErrConflict)
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the guest's SSH server did not answer within %s (last error: %v): %w", sshReadyLimit, last, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// release gives back what a running VM holds besides its VMM: NAT, its
// tap (to the pool), and its handles file; the row's teardown fields are
// cleared. Each step is tolerant of a thing already gone.
func (d *Daemon) release(ctx context.Context, vm *model.VMRecord, h vmHandles) error {
	var errs []error
	if h.NATIP == "" && vm.Spec.NATEnabled && h.Tap != "" {
		h.NATIP = vm.Runtime.GuestIP // handles lost: NAT may be on
	}
	if h.NATIP != "" {
		if err := d.helper.DisableNAT(ctx, h.NATIP); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("disable NAT for %s: %w", h.NATIP, err))
		}
	}
	if h.Tap != "" {
		if err := d.tapPool.Return(ctx, h.Tap); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("release tap %s: %w", h.Tap, err))
		}
	}
	if h.DMName != "" {
		if err := d.helper.DetachOverlay(ctx, h.DMName); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove dm-snapshot %s: %w", h.DMName, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := removeHandles(vm.Runtime.VMDir); err != nil {
		return err
	}
	vm.Runtime.TapDevice, vm.Runtime.BaseLoop, vm.Runtime.COWLoop, vm.Runtime.DMName, vm.Runtime.DMDev = "", "", "", "", ""
	vm.UpdatedAt = model.Now()
	return d.store.UpdateVM(ctx, *vm)
}

// handlesOf returns the VM's live handles: handles.json, or, when it is
// missing or corrupt, what the row mirrors (and the VMM found by its
// directory among the host's processes).
func (d *Daemon) handlesOf(vm model.VMRecord) vmHandles {
	h, ok, err := readHandles(vm.Runtime.VMDir)
	if ok {
		return h
	}
	if err != nil {
		d.logger.Warn("vm handles unreadable; using the row's teardown fields", append(vmLogAttrs(vm), "error", err.Error())...)
	}
	h = vmHandles{Tap: vm.Runtime.TapDevice, BaseLoop: vm.Runtime.BaseLoop, COWLoop: vm.Runtime.COWLoop, DMName: vm.Runtime.DMName}
	if vm.Spec.NATEnabled && h.Tap != "" {
		h.NATIP = vm.Runtime.GuestIP
	}
	if pid := findVMMProcess(vm.Runtime.VMDir, vm.Runtime.APISockPath); pid > 0 {
		if handle, err := vmm.HandleFor(vm.Runtime.VMM, pid, vm.Runtime.APISockPath); err == nil {
			h.VMM = handle
		}
	}
	return h
}

// teardown stops whatever runs for vm and releases what it holds. With
// kill it does not ask the guest first.
func (d *Daemon) teardown(ctx context.Context, vm model.VMRecord, kill bool) error {
	d.stopMonitor(vm.ID)
	h := d.handlesOf(vm)
	if h.VMM.PID != 0 && vmm.Alive(h.VMM) {
		driver, err := d.driver(vm.Runtime.VMM)
		if err != nil {
			return err
		}
		if !kill {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = driver.Stop(sctx, h.VMM)
			cancel()
		}
		if kill || err != nil {
			if err := driver.Kill(h.VMM); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = vmm.Wait(wctx, h.VMM)
		cancel()
		if err != nil {
			return fmt.Errorf("vmm pid %d did not exit: %w", h.VMM.PID, err)
		}
	}
	return d.release(ctx, &vm, h)
}

// pickDriver resolves a VMM choice ("", "auto", a driver's name) to a
// driver this daemon has.
func (d *Daemon) pickDriver(choice string) (string, error) {
	if choice == "" {
		choice = d.cfg.VMM
	}
	if choice == "" || choice == model.VMMAuto {
		return d.autoDriver, nil
	}
	if _, ok := d.drivers[choice]; !ok {
		return "", errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("--vmm %q: this bangerd has %s", choice, strings.Join(d.driverNames(), " and ")))
	}
	return choice, nil
}

// driverInstalled refuses a driver whose program is not there, before a
// create makes anything: `--vmm firecracker` without Firecracker.
func (d *Daemon) driverInstalled(name string) error {
	drv, err := d.driver(name)
	if err != nil {
		return err
	}
	if b, ok := drv.(interface{ BinaryPath() (string, error) }); ok {
		if _, err := b.BinaryPath(); err != nil {
			return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("vmm %s: %v; install it, set firecracker_bin in %s, or use --vmm qemu", name, err, d.layout.ConfigFile))
		}
	}
	return nil
}

func (d *Daemon) driver(name string) (vmm.Driver, error) {
	drv, ok := d.drivers[name]
	if !ok {
		return nil, fmt.Errorf("vm uses the %q VMM, which this bangerd does not have: %w", name, errdefs.ErrUnavailable)
	}
	return drv, nil
}

func (d *Daemon) driverNames() []string {
	var names []string
	for n := range d.drivers {
		names = append(names, strconv.Quote(n))
	}
	sort.Strings(names)
	return names
}
