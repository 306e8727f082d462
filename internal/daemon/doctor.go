package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/rpc"
	"banger/internal/sshkey"
	"banger/internal/vmm/qemu"
)

const (
	// doctorMinFreeBytes is the free space in the data directory below
	// which doctor warns: an image build takes about 1 GiB, and every
	// VM's overlay and work disk grow as its guest writes.
	doctorMinFreeBytes = 5 << 30
	// doctorVersionTimeout bounds each `PROGRAM --version` doctor runs.
	doctorVersionTimeout = 5 * time.Second
	// qemuBinary is the program the QEMU driver runs unless told
	// otherwise.
	qemuBinary = "qemu-system-x86_64"
)

// doctorTools are the host programs image builds and VM creates run, in
// the order doctor reports them. A missing tool with fail set stops
// every VM create; the others cost one feature, which need names.
var doctorTools = []struct {
	name string
	// sbin: looked up as the daemon runs it, with disk.Tool, which also
	// searches the sbin directories an ordinary user's $PATH lacks.
	sbin bool
	fail bool
	need string
}{
	{"mmdebstrap", false, false, "'banger image build' needs it ('banger image register' does not); install mmdebstrap"},
	{"mkfs.ext4", true, true, "VM creates make work disks with it; install e2fsprogs"},
	{"e2fsck", true, true, "VM creates check disks with it before growing them; install e2fsprogs"},
	{"resize2fs", true, true, "VM creates grow system overlays with it, 'vm set --disk' work disks; install e2fsprogs"},
	{"ssh", false, false, "'banger vm ssh' and 'vm exec' run it; install openssh-client"},
}

// chooseOverlayStrategy is how a VM's system overlay is made on this
// host, best first: a dm-snapshot when banger-helper can build one
// (helperDM), else a reflink when the VMs directory supports FICLONE,
// else a sparse copy.
func chooseOverlayStrategy(helperDM bool, reflink bool) disk.OverlayStrategy {
	switch {
	case helperDM:
		return disk.OverlayDMSnapshot
	case reflink:
		return disk.OverlayReflink
	}
	return disk.OverlayCopy
}

// doctor answers daemon.doctor: whether this host can run banger, one
// check at a time, and what bangerd would choose for a VM created now.
// It changes nothing but a probe file in the VMs directory, created and
// removed. The checks run as the daemon runs, as its user and with its
// $PATH, which is what decides whether /dev/kvm opens and tools are found.
func (d *Daemon) doctor(ctx context.Context, _ rpc.NoParams) (api.DoctorResult, error) {
	op := d.beginOperation(ctx, "daemon.doctor")
	var res api.DoctorResult
	add := func(c api.DoctorCheck) { res.Checks = append(res.Checks, c) }

	hostAccel := qemu.DetectAccel()
	if hostAccel.Accel == qemu.AccelKVM {
		add(doctorCheck("kvm", api.CheckOK, hostAccel.Reason))
	} else {
		add(doctorCheck("kvm", api.CheckWarn, hostAccel.Reason+"; VMs run under emulation, several times slower"))
	}
	qemuDrv, _ := d.drivers[model.VMMQEMU].(*qemu.Driver)
	add(d.checkQEMU(ctx, qemuDrv))
	add(d.checkFirecracker(ctx))
	res.Choices.VMM = d.cfg.VMM
	if res.Choices.VMM == "" {
		res.Choices.VMM = model.VMMAuto
	}
	driver, c := d.checkVMM(res.Choices.VMM)
	add(c)
	res.Choices.Driver = driver
	if driver == model.VMMQEMU {
		dec := hostAccel
		if qemuDrv != nil {
			var err error
			if dec, err = qemuDrv.ResolveAccel(); err != nil {
				dec = qemu.AccelDecision{Reason: err.Error()}
			}
		}
		res.Choices.Accel, res.Choices.AccelReason = string(dec.Accel), dec.Reason
	}

	helper, helperErr := d.doctorHelperStatus(ctx)
	if helperErr != nil {
		add(doctorCheck("helper", api.CheckFail, helperErr.Error()+"; VMs cannot start without it (it makes their taps)"))
	} else {
		add(doctorCheck("helper", api.CheckOK, fmt.Sprintf("reachable at %s (%s)", d.helper.Socket, helper.Version)))
	}
	add(d.checkBridge(helper, helperErr))
	add(d.checkTapPool(helperErr == nil))

	reflink, reflinkDetail := d.probeReflink()
	strategy := chooseOverlayStrategy(helperErr == nil && helper.DMSnapshot, reflink)
	res.Choices.OverlayStrategy = string(strategy)
	// A way of making overlays this host lacks matters only when it is
	// left with copies.
	lacking := api.CheckOK
	if strategy == disk.OverlayCopy {
		lacking = api.CheckWarn
	}
	instead := "; " + string(strategy) + " is used instead"
	switch {
	case helperErr != nil:
		add(doctorCheck("dm-snapshot", lacking, "unknown: banger-helper is not reachable"+instead))
	case helper.DMSnapshot:
		add(doctorCheck("dm-snapshot", api.CheckOK, joinDetail("available through banger-helper", helper.DMSnapshotDetail)))
	case helper.DMSnapshotDetail == "":
		add(doctorCheck("dm-snapshot", lacking, fmt.Sprintf("not available: banger-helper %s does not offer it; upgrade it with 'sudo banger system install'", helper.Version)+instead))
	default:
		add(doctorCheck("dm-snapshot", lacking, "not available: "+helper.DMSnapshotDetail+instead))
	}
	if reflink {
		add(doctorCheck("reflink", api.CheckOK, reflinkDetail))
	} else {
		add(doctorCheck("reflink", lacking, reflinkDetail+instead))
	}
	switch strategy {
	case disk.OverlayDMSnapshot:
		add(doctorCheck("overlay", api.CheckOK, "dm-snapshot: a device-mapper snapshot of the image, made by banger-helper"))
	case disk.OverlayReflink:
		add(doctorCheck("overlay", api.CheckOK, "reflink: a clone of the image's root file system, made in milliseconds"))
	default:
		add(doctorCheck("overlay", api.CheckWarn, fmt.Sprintf("copy: each VM's system overlay is a full sparse copy of its image, which is slow; "+
			"a data directory (%s) on XFS or btrfs gives reflinks", d.layout.DataDir)))
	}

	for _, tool := range doctorTools {
		path, found := lookTool(tool.name, tool.sbin)
		switch {
		case found:
			add(doctorCheck(tool.name, api.CheckOK, path))
		case tool.fail:
			add(doctorCheck(tool.name, api.CheckFail, "not found: "+tool.need))
		default:
			add(doctorCheck(tool.name, api.CheckWarn, "not found: "+tool.need))
		}
	}

	add(d.checkSSHKey())
	add(d.checkDefaultImage(ctx))
	add(d.checkFreeSpace())

	op.done("failed", checkNames(res.Failed()), "warnings", checkNames(res.Warnings()),
		"driver", res.Choices.Driver, "accel", res.Choices.Accel, "overlay_strategy", res.Choices.OverlayStrategy)
	return res, nil
}

// doctorCheck is one line of the result.
func doctorCheck(name, status, detail string) api.DoctorCheck {
	return api.DoctorCheck{Name: name, Status: status, Detail: detail}
}

// checkNames names the checks, for the log.
func checkNames(checks []api.DoctorCheck) []string {
	out := []string{}
	for _, c := range checks {
		out = append(out, c.Name)
	}
	return out
}

// joinDetail is what, followed by ": detail" when there is one.
func joinDetail(what, detail string) string {
	if detail == "" {
		return what
	}
	return what + ": " + detail
}

// lookTool finds a program as the daemon would run it.
func lookTool(name string, sbin bool) (string, bool) {
	if sbin {
		p := disk.Tool(name)
		return p, filepath.IsAbs(p)
	}
	p, err := exec.LookPath(name)
	return p, err == nil
}

// versionLine runs `bin --version` and returns the first line it prints.
func versionLine(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, doctorVersionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s --version: %w", bin, ctx.Err())
		}
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line), nil
}

// checkQEMU finds the QEMU program the driver runs, the only VMM banger
// has so far, and asks it for its version.
func (d *Daemon) checkQEMU(ctx context.Context, drv *qemu.Driver) api.DoctorCheck {
	bin := qemuBinary
	if drv != nil && drv.Binary != "" {
		bin = drv.Binary
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return doctorCheck("qemu", api.CheckFail, fmt.Sprintf("%s not found on $PATH (%s): it runs every VM; install qemu-system-x86 (Debian) or qemu-system-x86_64", bin, os.Getenv("PATH")))
	}
	version, err := versionLine(ctx, path)
	if err != nil {
		return doctorCheck("qemu", api.CheckFail, fmt.Sprintf("%s does not run: %v", path, err))
	}
	return doctorCheck("qemu", api.CheckOK, path+": "+version)
}

// checkFirecracker reports whether the configured Firecracker binary is
// there, and its version. Its absence is a warning: qemu does the work.
func (d *Daemon) checkFirecracker(ctx context.Context) api.DoctorCheck {
	bin := d.cfg.FirecrackerBin
	if bin == "" {
		bin = "firecracker"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return doctorCheck("firecracker", api.CheckWarn, fmt.Sprintf("%s not installed; qemu is used", bin))
	}
	detail := path
	if version, err := versionLine(ctx, path); err == nil && version != "" {
		detail += ": " + version
	}
	if d.autoDriver != model.VMMFirecracker {
		detail += "; vmm = auto picks qemu: " + d.autoReason
	}
	return doctorCheck("firecracker", api.CheckOK, detail)
}

// checkVMM resolves the configured driver choice as a VM create without
// --vmm would.
func (d *Daemon) checkVMM(choice string) (string, api.DoctorCheck) {
	if choice == model.VMMAuto {
		if _, ok := d.drivers[d.autoDriver]; !ok {
			return "", doctorCheck("vmm", api.CheckFail, "auto resolves to no driver: this bangerd has none")
		}
		return d.autoDriver, doctorCheck("vmm", api.CheckOK, "auto: "+d.autoDriver)
	}
	if _, ok := d.drivers[choice]; !ok {
		return "", doctorCheck("vmm", api.CheckFail, fmt.Sprintf("vmm = %q in %s, but this bangerd has only %s; set vmm to %q",
			choice, d.layout.ConfigFile, strings.Join(d.driverNames(), " and "), model.VMMAuto))
	}
	return choice, doctorCheck("vmm", api.CheckOK, choice+" (configured)")
}

// doctorHelperStatus asks banger-helper for its status, as daemon.status
// does and with the same short timeout.
func (d *Daemon) doctorHelperStatus(ctx context.Context) (helperapi.StatusResult, error) {
	ctx, cancel := context.WithTimeout(ctx, helperStatusTimeout)
	defer cancel()
	return d.helper.Status(ctx)
}

// checkBridge reports the helper's bridge, and whether it is the one
// bangerd's config names: guests get addresses from the daemon's
// bridge_ip and cidr, so a helper configured otherwise strands them.
func (d *Daemon) checkBridge(st helperapi.StatusResult, helperErr error) api.DoctorCheck {
	if helperErr != nil {
		return doctorCheck("bridge", api.CheckWarn, "unknown: banger-helper is not reachable")
	}
	b := st.Bridge
	desc := strings.TrimSpace(b.Name + " " + b.Address)
	if d.cfg.BridgeName != "" {
		want := d.cfg.BridgeName
		if p, err := bridgePrefix(d.cfg); err == nil {
			want += " " + p.String()
		}
		if desc != want {
			return doctorCheck("bridge", api.CheckFail, fmt.Sprintf("banger-helper's bridge is %s but bangerd's config says %s; "+
				"make bridge_name, bridge_ip and cidr agree in %s and %s", desc, want, d.layout.ConfigFile, helperapi.DefaultConfigPath))
		}
	}
	switch {
	case !b.Exists:
		return doctorCheck("bridge", api.CheckOK, desc+" not created yet; banger-helper makes it with the first tap")
	case !b.Up:
		return doctorCheck("bridge", api.CheckWarn, desc+" is down: VMs have no network until banger-helper brings it up with the next tap")
	}
	return doctorCheck("bridge", api.CheckOK, desc+" up")
}

// checkTapPool reports the daemon's pool of ready taps.
func (d *Daemon) checkTapPool(helperReachable bool) api.DoctorCheck {
	p := d.tapPoolStatus()
	if p.Size == 0 {
		return doctorCheck("tap pool", api.CheckOK, "off (tap_pool_size = 0): each VM start asks banger-helper for a tap")
	}
	s := fmt.Sprintf("%d/%d ready", p.Ready, p.Size)
	switch {
	case !helperReachable:
		return doctorCheck("tap pool", api.CheckWarn, s+", waiting for banger-helper")
	case p.LastError != "":
		return doctorCheck("tap pool", api.CheckWarn, s+", last refill failed: "+p.LastError)
	case p.Ready < p.Size:
		return doctorCheck("tap pool", api.CheckOK, s+", filling")
	}
	return doctorCheck("tap pool", api.CheckOK, s)
}

// probeReflink says whether the VMs directory can clone files, naming
// its file system.
func (d *Daemon) probeReflink() (bool, string) {
	dir := d.layout.VMsDir
	if _, err := os.Stat(dir); err != nil {
		return false, fmt.Sprintf("cannot probe %s: %v", dir, unwrapPathError(err))
	}
	fs := fsName(dir)
	if disk.ProbeReflink(dir) {
		return true, fmt.Sprintf("supported by %s at %s", fs, dir)
	}
	return false, fmt.Sprintf("not supported by %s at %s", fs, dir)
}

// fsName names the file system dir is on, for messages.
func fsName(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "the file system"
	}
	switch uint64(st.Type) {
	case unix.EXT4_SUPER_MAGIC: // ext2, ext3 and ext4 share it
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "XFS"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.NFS_SUPER_MAGIC:
		return "NFS"
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs"
	case unix.BCACHEFS_SUPER_MAGIC:
		return "bcachefs"
	case 0x2fc12fc1:
		return "ZFS"
	}
	return fmt.Sprintf("the file system (type %#x)", uint64(st.Type))
}

// checkSSHKey checks the key bangerd logs in to guests with. A key not
// made yet is fine: the first image build or VM create makes it.
func (d *Daemon) checkSSHKey() api.DoctorCheck {
	path := d.cfg.SSHKeyPath
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return doctorCheck("ssh key", api.CheckOK, path+" not made yet; bangerd makes it (ed25519) on first use")
	case err != nil:
		return doctorCheck("ssh key", api.CheckFail, fmt.Sprintf("%s: %v", path, unwrapPathError(err)))
	case fi.Mode().Perm()&0o077 != 0:
		return doctorCheck("ssh key", api.CheckFail, fmt.Sprintf("%s is readable by others (mode %#o); chmod 600 it", path, fi.Mode().Perm()))
	}
	key, err := sshkey.Load(path)
	if err != nil {
		return doctorCheck("ssh key", api.CheckFail, err.Error()+"; remove it and bangerd makes a new one (images built with the old key keep it)")
	}
	return doctorCheck("ssh key", api.CheckOK, fmt.Sprintf("%s (%s %s)", path, key.Public().Type(), key.Fingerprint()))
}

// checkDefaultImage looks up the image a VM create without --image uses,
// as the create would, and checks its files are there.
func (d *Daemon) checkDefaultImage(ctx context.Context) api.DoctorCheck {
	name := d.cfg.DefaultImageName
	img, err := d.store.FindImage(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return doctorCheck("image", api.CheckWarn, fmt.Sprintf("the default image %q does not exist yet; build it with 'banger image build' (a few minutes)", name))
	}
	if err != nil {
		return doctorCheck("image", api.CheckFail, fmt.Sprintf("look up the default image %q: %v", name, err))
	}
	for _, f := range []struct{ what, path string }{{"kernel", img.KernelPath}, {"root file system", img.RootfsPath}, {"initrd", img.InitrdPath}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return doctorCheck("image", api.CheckWarn, fmt.Sprintf("the default image %q: its %s %s is missing (%v); remove it with 'banger image rm %s' and build it again with 'banger image build'",
				img.Name, f.what, f.path, unwrapPathError(err), img.Name))
		}
	}
	kind := "registered"
	if img.Managed {
		kind = "built"
	}
	id := img.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return doctorCheck("image", api.CheckOK, fmt.Sprintf("%s (%s, %s %s)", img.Name, id, kind, img.CreatedAt.Local().Format("2006-01-02 15:04")))
}

// checkFreeSpace reports the free space where images and VM disks live.
func (d *Daemon) checkFreeSpace() api.DoctorCheck {
	dir := d.layout.DataDir
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return doctorCheck("disk space", api.CheckWarn, fmt.Sprintf("cannot check the free space in %s: %v", dir, err))
	}
	free := st.Bavail * uint64(st.Bsize)
	s := fmt.Sprintf("%s free in %s", formatGiB(free), dir)
	if free < doctorMinFreeBytes {
		return doctorCheck("disk space", api.CheckWarn, fmt.Sprintf("only %s (under %s): an image build needs about 1 GiB and VM disks grow as guests write",
			s, formatGiB(doctorMinFreeBytes)))
	}
	return doctorCheck("disk space", api.CheckOK, s)
}

func formatGiB(n uint64) string {
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
