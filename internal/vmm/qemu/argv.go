package qemu

import (
	"fmt"
	"strconv"
	"strings"

	"banger/internal/vmm"
)

// qmpFD is the descriptor QEMU inherits its QMP listening socket on: the
// first of exec.Cmd's ExtraFiles.
const qmpFD = 3

// machine is what the command line depends on besides the spec.
type machine struct {
	accel  Accel
	tscKHz int  // the host's TSC in kHz, 0 if unknown (TCG only)
	vsock  bool // the host has /dev/vhost-vsock
}

// qemuArgs is QEMU's command line for spec, without the program name.
//
// The machine is microvm: virtio-mmio devices and no PCI, the closest
// QEMU has to Firecracker. acpi=on is microvm's default, spelled out
// because both things banger needs from the guest kernel come through
// ACPI: the virtio-mmio devices (Debian's kernel lacks
// CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so with acpi=off it finds no
// disks) and the power button system_powerdown presses (a generic event
// device notifying PNP0C0C). Disks are attached root first so the guest
// names them /dev/vda and /dev/vdb. -no-reboot turns a guest reboot into
// QEMU exiting, as a power-off does, so a VM never comes back by itself.
func qemuArgs(spec vmm.Spec, m machine) []string {
	a := []string{"-M", "microvm,acpi=on"}
	switch m.accel {
	case AccelKVM:
		a = append(a, "-accel", "kvm", "-cpu", "host")
	default:
		// The translation cache keeps QEMU's default size: capping it
		// (tb-size=64, ~100 MiB less RSS) made a Debian guest take 1.7 s
		// longer to answer SSH (BenchmarkCreateToSSH, 16.6 s vs 15.0 s).
		a = append(a, "-accel", "tcg", "-cpu", "max")
	}
	a = append(a,
		"-m", strconv.Itoa(spec.MemoryMiB)+"M",
		"-smp", strconv.Itoa(spec.VCPUs),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", spec.KernelPath,
	)
	if spec.InitrdPath != "" {
		a = append(a, "-initrd", spec.InitrdPath)
	}
	a = append(a, "-append", cmdline(spec.Cmdline, m))
	a = append(a, drive("root", spec.RootDisk)...)
	if spec.WorkDisk != "" {
		a = append(a, drive("work", spec.WorkDisk)...)
	}
	if spec.Tap != "" {
		a = append(a,
			"-netdev", "tap,id=net0,ifname="+opt(spec.Tap)+",script=no,downscript=no",
			"-device", "virtio-net-device,netdev=net0,mac="+spec.MAC,
		)
	}
	// QEMU's vsock is vhost: the host reaches the guest through AF_VSOCK
	// at the guest's CID, so spec.VSockPath (Firecracker's unix socket)
	// has no use here.
	if m.vsock && spec.VSockCID != 0 {
		a = append(a, "-device", "vhost-vsock-device,id=vsock0,guest-cid="+strconv.FormatUint(uint64(spec.VSockCID), 10))
	}
	a = append(a,
		"-chardev", "file,id=console,path="+opt(spec.ConsoleLog)+",append=on",
		"-serial", "chardev:console",
		// The monitor listens on a socket the driver bound before QEMU
		// started, so there is no window in which the path is missing or
		// stale, and nothing to poll for.
		"-chardev", "socket,id=qmp,fd="+strconv.Itoa(qmpFD)+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
	)
	return a
}

func drive(id, path string) []string {
	return []string{
		"-drive", "id=" + id + ",file=" + opt(path) + ",format=raw,if=none",
		"-device", "virtio-blk-device,drive=" + id,
	}
}

// opt escapes a value for a QEMU option list, where a comma separates
// options and ",," is a literal comma.
func opt(v string) string { return strings.ReplaceAll(v, ",", ",,") }

// cmdline is the kernel command line: the spec's, plus what the machine
// needs. Under TCG a microvm guest can hang calibrating its TSC when the
// host is busy, so it is told the frequency (tsc_early_khz; under TCG the
// guest's TSC is the host's) and that the TSC can be trusted
// (tsc=reliable). A parameter the spec already sets is left as it is.
func cmdline(base string, m machine) string {
	if m.accel == AccelKVM {
		return base
	}
	var extra []string
	if m.tscKHz > 0 {
		extra = append(extra, fmt.Sprintf("tsc_early_khz=%d", m.tscKHz))
	}
	extra = append(extra, "tsc=reliable")
	return appendParams(base, extra...)
}

// appendParams adds each key=value param whose key base does not set.
func appendParams(base string, params ...string) string {
	set := map[string]bool{}
	for _, f := range strings.Fields(base) {
		key, _, _ := strings.Cut(f, "=")
		set[key] = true
	}
	out := strings.TrimSpace(base)
	for _, p := range params {
		key, _, _ := strings.Cut(p, "=")
		if set[key] {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}
