package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Accel is the accelerator QEMU runs a guest with.
type Accel string

const (
	// AccelAuto (or "") picks KVM when DetectAccel finds it usable, TCG
	// otherwise.
	AccelAuto Accel = "auto"
	// AccelKVM runs the guest on the host CPU through /dev/kvm.
	AccelKVM Accel = "kvm"
	// AccelTCG emulates the CPU: slower, but needs nothing from the host.
	AccelTCG Accel = "tcg"
)

// AccelDecision is the accelerator a VM gets and why, in words fit for
// `banger doctor`.
type AccelDecision struct {
	Accel  Accel  `json:"accel"`
	Reason string `json:"reason"`
}

// hostFiles are where accelerator detection looks; tests point them at
// a fake tree.
type hostFiles struct {
	DevKVM string // /dev/kvm
	Proc   string // /proc
	Sys    string // /sys
}

var realHost = hostFiles{DevKVM: "/dev/kvm", Proc: "/proc", Sys: "/sys"}

// DetectAccel decides between KVM and TCG for this host. KVM needs all
// three of: /dev/kvm opens read-write for this user, the CPU advertises
// hardware virtualisation (vmx or svm), and a KVM module that runs
// ordinary guests (kvm_intel or kvm_amd) is loaded. The last matters:
// some cloud hosts offer /dev/kvm through kvm_pvm, a paravirtual-only
// module under which an ordinary guest kernel hangs at boot.
func DetectAccel() AccelDecision { return detectAccel(realHost) }

func detectAccel(h hostFiles) AccelDecision {
	var missing []string
	f, err := os.OpenFile(h.DevKVM, os.O_RDWR, 0)
	if err != nil {
		missing = append(missing, fmt.Sprintf("cannot open %s read-write (%s)", h.DevKVM, errReason(err)))
	} else {
		f.Close()
	}
	flag, err := cpuVirtFlag(filepath.Join(h.Proc, "cpuinfo"))
	switch {
	case err != nil:
		missing = append(missing, fmt.Sprintf("cannot read the CPU flags: %v", err))
	case flag == "":
		missing = append(missing, "the CPU advertises neither vmx nor svm")
	}
	module, others := kvmModules(filepath.Join(h.Sys, "module"))
	if module == "" {
		msg := "neither kvm_intel nor kvm_amd is loaded"
		if len(others) > 0 {
			msg += fmt.Sprintf(" (only %s, which cannot run an ordinary guest)", strings.Join(others, ", "))
		}
		missing = append(missing, msg)
	}
	if len(missing) > 0 {
		return AccelDecision{Accel: AccelTCG, Reason: "TCG (emulation): " + strings.Join(missing, "; ")}
	}
	return AccelDecision{Accel: AccelKVM, Reason: fmt.Sprintf("KVM: %s is usable, the CPU has %s, %s is loaded", h.DevKVM, flag, module)}
}

func errReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// cpuVirtFlag returns "vmx" or "svm" if the first CPU's flags list one.
func cpuVirtFlag(cpuinfo string) (string, error) {
	f, err := os.Open(cpuinfo)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		flags := strings.Fields(value)
		for _, want := range []string{"vmx", "svm"} {
			if slices.Contains(flags, want) {
				return want, nil
			}
		}
		return "", nil
	}
	return "", sc.Err()
}

// kvmModules returns the loaded module that runs ordinary guests
// (kvm_intel or kvm_amd), or "" and the other kvm_* modules found.
func kvmModules(moduleDir string) (string, []string) {
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if fi, err := os.Stat(filepath.Join(moduleDir, m)); err == nil && fi.IsDir() {
			return m, nil
		}
	}
	entries, _ := os.ReadDir(moduleDir)
	var others []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "kvm_") {
			others = append(others, e.Name())
		}
	}
	return "", others
}

// hostTSCkHz is the host CPU's clock in kHz as /proc/cpuinfo reports it
// ("cpu MHz"), or 0 when it does not. Under TCG the guest's TSC is the
// host's, so this is the frequency the guest should assume.
func hostTSCkHz(proc string) int {
	f, err := os.Open(filepath.Join(proc, "cpuinfo"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || mhz <= 0 {
			return 0
		}
		return int(math.Round(mhz * 1000))
	}
	return 0
}

// HostTSCkHz is this host's CPU clock in kHz, or 0 when /proc/cpuinfo
// does not say: what a guest under TCG should take its TSC's frequency
// to be.
func HostTSCkHz() int { return hostTSCkHz(realHost.Proc) }
