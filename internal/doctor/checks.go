package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"banger/internal/api"
	"banger/internal/config"
	"banger/internal/disk"
	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/sshkey"
	"banger/internal/vmm/qemu"
)

// checkQEMU finds the QEMU program the driver runs, the only VMM banger
// has so far, and asks it for its version.
func (s *Service) checkQEMU(ctx context.Context, drv *qemu.Driver) api.DoctorCheck {
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
func (s *Service) checkFirecracker(ctx context.Context) api.DoctorCheck {
	bin := s.Config.FirecrackerBin
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
	if c := s.VMM(); c.Auto != model.VMMFirecracker {
		detail += "; vmm = auto picks qemu: " + c.AutoReason
	}
	return doctorCheck("firecracker", api.CheckOK, detail)
}

// checkVMM resolves the configured driver choice as a VM create without
// --vmm would.
func (s *Service) checkVMM(choice string) (string, api.DoctorCheck) {
	if choice == model.VMMAuto {
		auto := s.VMM().Auto
		if !slices.Contains(s.Drivers, auto) {
			return "", doctorCheck("vmm", api.CheckFail, "auto resolves to no driver: this bangerd has none")
		}
		return auto, doctorCheck("vmm", api.CheckOK, "auto: "+auto)
	}
	if !slices.Contains(s.Drivers, choice) {
		quoted := make([]string, len(s.Drivers))
		for i, d := range s.Drivers {
			quoted[i] = strconv.Quote(d)
		}
		return "", doctorCheck("vmm", api.CheckFail, fmt.Sprintf("vmm = %q in %s, but this bangerd has only %s; set vmm to %q",
			choice, s.Layout.ConfigFile, strings.Join(quoted, " and "), model.VMMAuto))
	}
	return choice, doctorCheck("vmm", api.CheckOK, choice+" (configured)")
}

// helperStatus asks banger-helper for its status, as daemon.status
// does and with the same short timeout.
func (s *Service) helperStatus(ctx context.Context) (helperapi.StatusResult, error) {
	ctx, cancel := context.WithTimeout(ctx, HelperTimeout)
	defer cancel()
	return s.Helper.Status(ctx)
}

// checkBridge reports the helper's bridge, and whether it is the one
// bangerd's config names: guests get addresses from the daemon's
// bridge_ip and cidr, so a helper configured otherwise strands them.
func (s *Service) checkBridge(st helperapi.StatusResult, helperErr error) api.DoctorCheck {
	if helperErr != nil {
		return doctorCheck("bridge", api.CheckWarn, "unknown: banger-helper is not reachable")
	}
	b := st.Bridge
	desc := strings.TrimSpace(b.Name + " " + b.Address)
	if s.Config.BridgeName != "" {
		want := s.Config.BridgeName
		if p, err := config.BridgePrefix(s.Config); err == nil {
			want += " " + p.String()
		}
		if desc != want {
			return doctorCheck("bridge", api.CheckFail, fmt.Sprintf("banger-helper's bridge is %s but bangerd's config says %s; "+
				"make bridge_name, bridge_ip and cidr agree in %s and %s", desc, want, s.Layout.ConfigFile, helperapi.DefaultConfigPath))
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
func (s *Service) checkTapPool(helperReachable bool) api.DoctorCheck {
	p := s.TapPool()
	if p.Size == 0 {
		return doctorCheck("tap pool", api.CheckOK, "off (tap_pool_size = 0): each VM start asks banger-helper for a tap")
	}
	ready := fmt.Sprintf("%d/%d ready", p.Ready, p.Size)
	switch {
	case !helperReachable:
		return doctorCheck("tap pool", api.CheckWarn, ready+", waiting for banger-helper")
	case p.LastError != "":
		return doctorCheck("tap pool", api.CheckWarn, ready+", last refill failed: "+p.LastError)
	case p.Ready < p.Size:
		return doctorCheck("tap pool", api.CheckOK, ready+", filling")
	}
	return doctorCheck("tap pool", api.CheckOK, ready)
}

// probeReflink says whether the VMs directory can clone files, naming
// its file system.
func (s *Service) probeReflink() (bool, string) {
	dir := s.Layout.VMsDir
	if _, err := os.Stat(dir); err != nil {
		return false, fmt.Sprintf("cannot probe %s: %v", dir, errdefs.PathCause(err))
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
func (s *Service) checkSSHKey() api.DoctorCheck {
	path := s.Config.SSHKeyPath
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return doctorCheck("ssh key", api.CheckOK, path+" not made yet; bangerd makes it (ed25519) on first use")
	case err != nil:
		return doctorCheck("ssh key", api.CheckFail, fmt.Sprintf("%s: %v", path, errdefs.PathCause(err)))
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
func (s *Service) checkDefaultImage(ctx context.Context) api.DoctorCheck {
	name := s.Config.DefaultImageName
	img, err := s.Store.FindImage(ctx, name)
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
				img.Name, f.what, f.path, errdefs.PathCause(err), img.Name))
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
func (s *Service) checkFreeSpace() api.DoctorCheck {
	dir := s.Layout.DataDir
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return doctorCheck("disk space", api.CheckWarn, fmt.Sprintf("cannot check the free space in %s: %v", dir, err))
	}
	free := st.Bavail * uint64(st.Bsize)
	what := fmt.Sprintf("%s free in %s", formatGiB(free), dir)
	if free < doctorMinFreeBytes {
		return doctorCheck("disk space", api.CheckWarn, fmt.Sprintf("only %s (under %s): an image build needs about 1 GiB and VM disks grow as guests write",
			what, formatGiB(doctorMinFreeBytes)))
	}
	return doctorCheck("disk space", api.CheckOK, what)
}

func formatGiB(n uint64) string {
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
