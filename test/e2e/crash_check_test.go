package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"banger/internal/api"
)

// settleLimit is how long a VM may take, after the restart, to reach a
// state the user can act on (a dead VMM is noticed within a second).
const settleLimit = 20 * time.Second

// settle waits until the VM is in a state the user can act on and says
// which; the problem is what is wrong with it when it never gets there.
func (l *crashLane) settle(name string) (outcome, problem string) {
	deadline := time.Now().Add(settleLimit)
	for {
		det, found := l.find(name)
		outcome, problem = "gone", ""
		if found {
			outcome, problem = string(det.State), l.actionable(det)
		}
		if problem == "" || time.Now().After(deadline) {
			if problem != "" {
				problem = fmt.Sprintf("the VM is left %s: %s", outcome, problem)
			}
			return outcome, problem
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// actionable says what is wrong with a VM's record and what the host
// holds for it ("" when nothing): a created or stopped VM holds no VMM,
// tap, NAT rule or handles; a running one has its VMM alive and NAT as
// its record says; an error names its reason.
func (l *crashLane) actionable(det api.VMDetail) string {
	dir := det.Runtime.VMDir
	vmms := qemuFor(dir)
	nat := strings.Contains(l.e.ns.Run(l.e.t, "iptables-save"), `"banger:nat:`+det.Runtime.GuestIP+`"`)
	switch det.State {
	case "created", "stopped":
		_, herr := os.Stat(filepath.Join(dir, "handles.json"))
		switch {
		case len(vmms) > 0:
			return fmt.Sprintf("its VMM still runs (pid %v)", vmms)
		case det.Runtime.TapDevice != "":
			return "it still holds tap " + det.Runtime.TapDevice
		case nat:
			return "its NAT rule is still in place"
		case herr == nil:
			return "its handles.json is still there"
		}
	case "running":
		switch {
		case det.PID == 0 || !slices.Contains(vmms, det.PID):
			return fmt.Sprintf("recorded running, but its VMM (pid %d) is not (VMMs for it: %v)", det.PID, vmms)
		case nat != det.Spec.NATEnabled:
			return fmt.Sprintf("its record says NAT %v, the host has NAT %v", det.Spec.NATEnabled, nat)
		}
	case "error":
		if det.Runtime.LastError == "" {
			return "in error without a reason"
		}
	default:
		return fmt.Sprintf("state %q", det.State)
	}
	return ""
}

// remove runs `vm rm --force` on the VM, if there is one, and checks it
// is gone.
func (l *crashLane) remove(name string) []string {
	if _, found := l.find(name); !found {
		return nil
	}
	if r := l.e.banger("vm", "rm", "--force", name); r.code != 0 {
		return []string{fmt.Sprintf("vm rm --force: exit %d: %s", r.code, strings.TrimSpace(r.stderr))}
	}
	if _, found := l.find(name); found {
		return []string{"vm rm succeeded but the VM is still listed"}
	}
	return nil
}

// leftovers stops the daemon (its pool's ready taps go with it) and
// lists whatever banger left on the host or under its directories:
// taps, NAT rules, VMM processes, VM directories and sockets, temporary
// files, loop and dm devices, pinned host keys, and the helper's
// records.
func (l *crashLane) leftovers() []string {
	e := l.e
	if r := e.banger("daemon", "stop"); r.code != 0 {
		return []string{fmt.Sprintf("daemon stop: exit %d: %s", r.code, r.stderr)}
	}
	var left []string
	for _, tap := range e.taps() {
		left = append(left, "tap "+tap)
	}
	for _, line := range strings.Split(e.ns.Run(e.t, "iptables-save"), "\n") {
		if strings.Contains(line, "banger:nat:") {
			left = append(left, "NAT rule "+line)
		}
	}
	for _, pid := range qemuFor(l.vmsDir()) {
		left = append(left, fmt.Sprintf("VMM process %d", pid))
	}
	for _, dir := range []string{l.vmsDir(), filepath.Join(e.run, "banger", "vm")} {
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			left = append(left, filepath.Join(dir, en.Name()))
		}
	}
	for _, dir := range []string{l.dataDir(), filepath.Join(e.home, ".local", "state", "banger"), e.run} {
		left = append(left, tempFiles(dir)...)
	}
	left = append(left, l.devices()...)
	if kh, _ := os.ReadFile(filepath.Join(e.home, ".local", "state", "banger", "known_hosts")); len(bytes.TrimSpace(kh)) > 0 {
		left = append(left, "pinned host keys: "+strings.TrimSpace(string(kh)))
	}
	left = append(left, helperRecords(filepath.Join(e.helperDir, "state.json"))...)
	return left
}

// tempFiles lists the temporary files banger's writers make (a name
// starting with a dot, then the file's, then a random part) under dir.
func tempFiles(dir string) []string {
	var found []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n := d.Name()
		if strings.HasPrefix(n, ".") && (strings.Contains(n, ".tmp-") || strings.HasPrefix(n, ".handles.json.") ||
			strings.HasPrefix(n, ".work-stage-") || strings.HasPrefix(n, ".reflink-probe-") || strings.HasPrefix(n, ".build-")) {
			found = append(found, "temporary file "+path)
		}
		return nil
	})
	return found
}

// devices lists loop devices backed by files under banger's data
// directory, and device-mapper devices banger names.
func (l *crashLane) devices() []string {
	var left []string
	out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, l.dataDir()) {
			left = append(left, "loop device "+strings.TrimSpace(line))
		}
	}
	if out, err := exec.Command("dmsetup", "ls").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, fmt.Sprintf("banger-%d-", os.Getuid())) {
				left = append(left, "dm device "+line)
			}
		}
	}
	return left
}

// helperRecords lists what the helper's state file still records: taps,
// NAT entries and overlays.
func helperRecords(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{"helper state: " + err.Error()}
	}
	var st map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &st); err != nil {
		return []string{"helper state: " + err.Error()}
	}
	var left []string
	for _, kind := range []string{"taps", "nat", "overlays"} {
		for key := range st[kind] {
			left = append(left, "helper record of "+kind+" "+key)
		}
	}
	return left
}
