// Package doctor is the host-check service: whether this host can run
// banger, one check at a time, and what bangerd would choose for a VM
// created now. It is given the facts it checks — the driver choice, the
// tap pool, the helper — by the daemon's wiring, and changes nothing but
// a probe file in the VMs directory, created and removed.
package doctor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/paths"
	"banger/internal/vmm/qemu"
)

const (
	// doctorMinFreeBytes is the free space in the data directory below
	// which doctor warns: an image build takes about 1 GiB, and every
	// VM's overlay and work disk grow as its guest writes.
	doctorMinFreeBytes = 5 << 30
	// HelperTimeout bounds the helper call doctor (and daemon.status)
	// makes: the answer must come back quickly, and say why when the
	// helper does not.
	HelperTimeout = 1500 * time.Millisecond
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

// Store is what doctor reads of the store: the default image.
type Store interface {
	FindImage(ctx context.Context, ref string) (model.Image, error)
}

// Helper is what doctor asks of banger-helper.
type Helper interface {
	Status(ctx context.Context) (helperapi.StatusResult, error)
}

// Deps are the facts doctor checks, handed in by the wiring.
type Deps struct {
	Config model.DaemonConfig
	Layout paths.Layout
	Store  Store
	Helper Helper
	// HelperSocket is where the helper is reached, for messages.
	HelperSocket string
	// QEMU is the QEMU driver, nil when this bangerd has none.
	QEMU *qemu.Driver
	// Drivers are the names of the drivers this bangerd has, quoted.
	Drivers []string
	// VMM is what a VM created now without --vmm gets, and why.
	VMM func() api.VMMChoice
	// TapPool is the state of the daemon's tap pool.
	TapPool func() api.TapPoolStatus
	Logger  *slog.Logger
}

// Service runs the checks.
type Service struct{ Deps }

// New builds the service.
func New(d Deps) *Service { return &Service{d} }

// report is a doctor run in progress.
type report struct{ res api.DoctorResult }

func (r *report) add(c api.DoctorCheck) { r.res.Checks = append(r.res.Checks, c) }

// Run checks whether this host can run banger, one check at a time,
// always in the same order, and says what bangerd would choose for a VM
// created now. The checks run as the daemon runs, as its user and with
// its $PATH, which is what decides whether /dev/kvm opens and tools are
// found.
func (s *Service) Run(ctx context.Context) api.DoctorResult {
	op := oplog.Begin(ctx, s.Logger, "daemon.doctor")
	r := &report{}
	s.checkVMMs(ctx, r)
	helper, helperErr := s.helperStatus(ctx)
	if helperErr != nil {
		r.add(doctorCheck("helper", api.CheckFail, helperErr.Error()+"; VMs cannot start without it (it makes their taps)"))
	} else {
		r.add(doctorCheck("helper", api.CheckOK, fmt.Sprintf("reachable at %s (%s)", s.HelperSocket, helper.Version)))
	}
	r.add(s.checkBridge(helper, helperErr))
	r.add(s.checkTapPool(helperErr == nil))
	s.checkOverlays(r, helper, helperErr)
	for _, tool := range doctorTools {
		r.add(checkTool(tool.name, tool.sbin, tool.fail, tool.need))
	}
	r.add(s.checkSSHKey())
	r.add(s.checkDefaultImage(ctx))
	r.add(s.checkFreeSpace())
	res := r.res
	op.Done("failed", checkNames(res.Failed()), "warnings", checkNames(res.Warnings()),
		"driver", res.Choices.Driver, "accel", res.Choices.Accel, "overlay_strategy", res.Choices.OverlayStrategy)
	return res
}

// checkVMMs checks KVM, QEMU, Firecracker and the configured choice,
// and records the driver and accelerator a VM created now gets.
func (s *Service) checkVMMs(ctx context.Context, r *report) {
	hostAccel := qemu.DetectAccel()
	if hostAccel.Accel == qemu.AccelKVM {
		r.add(doctorCheck("kvm", api.CheckOK, hostAccel.Reason))
	} else {
		r.add(doctorCheck("kvm", api.CheckWarn, hostAccel.Reason+"; VMs run under emulation, several times slower"))
	}
	r.add(s.checkQEMU(ctx, s.QEMU))
	r.add(s.checkFirecracker(ctx))
	r.res.Choices.VMM = s.Config.VMM
	if r.res.Choices.VMM == "" {
		r.res.Choices.VMM = model.VMMAuto
	}
	driver, c := s.checkVMM(r.res.Choices.VMM)
	r.add(c)
	r.res.Choices.Driver = driver
	if driver != model.VMMQEMU {
		return
	}
	dec := hostAccel
	if s.QEMU != nil {
		var err error
		if dec, err = s.QEMU.ResolveAccel(); err != nil {
			dec = qemu.AccelDecision{Reason: err.Error()}
		}
	}
	r.res.Choices.Accel, r.res.Choices.AccelReason = string(dec.Accel), dec.Reason
}

// checkOverlays reports the ways of making system overlays, and which a
// VM created now gets.
func (s *Service) checkOverlays(r *report, helper helperapi.StatusResult, helperErr error) {
	reflink, reflinkDetail := s.probeReflink()
	strategy := disk.ChooseOverlayStrategy(helperErr == nil && helper.DMSnapshot, reflink)
	r.res.Choices.OverlayStrategy = string(strategy)
	// A way of making overlays this host lacks matters only when it is
	// left with copies.
	lacking := api.CheckOK
	if strategy == disk.OverlayCopy {
		lacking = api.CheckWarn
	}
	instead := "; " + string(strategy) + " is used instead"
	switch {
	case helperErr != nil:
		r.add(doctorCheck("dm-snapshot", lacking, "unknown: banger-helper is not reachable"+instead))
	case helper.DMSnapshot:
		r.add(doctorCheck("dm-snapshot", api.CheckOK, joinDetail("available through banger-helper", helper.DMSnapshotDetail)))
	case helper.DMSnapshotDetail == "":
		r.add(doctorCheck("dm-snapshot", lacking, fmt.Sprintf("not available: banger-helper %s does not offer it; upgrade it with 'sudo banger system install'", helper.Version)+instead))
	default:
		r.add(doctorCheck("dm-snapshot", lacking, "not available: "+helper.DMSnapshotDetail+instead))
	}
	if reflink {
		r.add(doctorCheck("reflink", api.CheckOK, reflinkDetail))
	} else {
		r.add(doctorCheck("reflink", lacking, reflinkDetail+instead))
	}
	switch strategy {
	case disk.OverlayDMSnapshot:
		r.add(doctorCheck("overlay", api.CheckOK, "dm-snapshot: a device-mapper snapshot of the image, made by banger-helper"))
	case disk.OverlayReflink:
		r.add(doctorCheck("overlay", api.CheckOK, "reflink: a clone of the image's root file system, made in milliseconds"))
	default:
		r.add(doctorCheck("overlay", api.CheckWarn, fmt.Sprintf("copy: each VM's system overlay is a full sparse copy of its image, which is slow; "+
			"a data directory (%s) on XFS or btrfs gives reflinks", s.Layout.DataDir)))
	}
}

// checkTool finds a program banger runs.
func checkTool(name string, sbin, fail bool, need string) api.DoctorCheck {
	path, found := lookTool(name, sbin)
	switch {
	case found:
		return doctorCheck(name, api.CheckOK, path)
	case fail:
		return doctorCheck(name, api.CheckFail, "not found: "+need)
	}
	return doctorCheck(name, api.CheckWarn, "not found: "+need)
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
