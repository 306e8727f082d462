package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestVMLifecycle: create → exec → write under /root → stop → start → the
// file is still there → set more memory and a bigger disk → the guest
// sees them → rm → nothing left: no tap, rule, disk, process or record.
// Once per driver, chosen with --vmm as a user would.
func TestVMLifecycle(t *testing.T) {
	forEachDriver(t, testVMLifecycle)
}

func testVMLifecycle(t *testing.T, drv string) {
	e := newVMEnv(t, "")

	r := e.must("vm", "create", "--name", "dev", "--nat", "--vmm", drv)
	for _, stage := range []string{"validate", "allocate", "system overlay", "work disk", "tap", "boot", "wait for ssh"} {
		if !regexp.MustCompile(`(?m)^✓ ` + regexp.QuoteMeta(stage) + ` +\d+\.\ds$`).MatchString(r.stderr) {
			t.Errorf("create showed no %q stage:\n%s", stage, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "vm dev is running at 172.16.0.") {
		t.Errorf("create said %q", r.stdout)
	}
	det := e.show("dev")
	ip, dir, tap := det.Runtime.GuestIP, det.Runtime.VMDir, det.Runtime.TapDevice
	if det.State != "running" || tap == "" || det.Runtime.VMM != drv || det.Runtime.MAC == "" || det.Runtime.DNSName != "dev.vm" {
		t.Fatalf("vm show after create: %+v", det)
	}
	// vm show and daemon status say what a VM created now gets.
	if c := det.VMMChoice; c == nil || c.Config != "auto" || c.Driver != c.Auto || c.AutoReason == "" {
		t.Errorf("vm show's vmm choice: %+v", c)
	}
	show := e.must("vm", "show", "dev").stdout
	if !strings.Contains(show, "vmm") || !strings.Contains(show, drv+" (pid ") || !strings.Contains(show, "(vmm = auto: ") {
		t.Errorf("vm show:\n%s", show)
	}
	if st := e.must("daemon", "status").stdout; !strings.Contains(st, "(vmm = auto: ") {
		t.Errorf("daemon status does not say what vmm = auto picks:\n%s", st)
	}
	if drv == "firecracker" {
		checkFirecrackerCalls(t, dir, "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source",
			"PUT /drives/rootfs", "PUT /drives/work", "PUT /network-interfaces/eth0", "PUT /vsock", "PUT /actions InstanceStart")
		for _, f := range []string{"firecracker.log", "metrics.json", "console.log"} {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 && f != "metrics.json" {
				t.Errorf("%s in the VM directory: %v", f, err)
			}
		}
	}

	if out := e.exec("dev", "uname -a"); !strings.Contains(out, "Linux dev ") {
		t.Errorf("uname -a: %q", out)
	}
	// The system overlay is the VM's own: what it writes outside /root
	// survives a restart too. With device-mapper (not on this project's
	// CI machines) it is a dm-snapshot built through the helper.
	if want := hostOverlayStrategy(dir); det.Runtime.OverlayStrategy != want {
		t.Errorf("overlay strategy %q, want %q on this host", det.Runtime.OverlayStrategy, want)
	}
	if det.Runtime.OverlayStrategy == "dm-snapshot" && !strings.HasPrefix(det.Runtime.DMDev, "/dev/mapper/banger-") {
		t.Errorf("dm-snapshot VM runs on %q", det.Runtime.DMDev)
	}
	e.exec("dev", "echo kept > /root/note && echo system > /etc/banger-note && sync")
	if rules := e.ns.Run(t, "iptables-save"); !strings.Contains(rules, "banger:nat:"+ip) {
		t.Errorf("--nat made no NAT rule for %s", ip)
	}

	r = e.must("vm", "stop", "dev")
	if !strings.Contains(r.stdout, "dev: stopped") {
		t.Errorf("stop said %q", r.stdout)
	}
	if drv == "firecracker" {
		checkFirecrackerCalls(t, dir, "PUT /actions SendCtrlAltDel")
	}
	if pids := qemuFor(dir); len(pids) != 0 {
		t.Errorf("QEMU still runs after stop: %v", pids)
	}
	if rules := e.ns.Run(t, "iptables-save"); strings.Contains(rules, "banger:nat:"+ip) {
		t.Errorf("NAT rule for %s survived stop", ip)
	}

	r = e.must("vm", "start", "dev")
	for _, stage := range []string{"tap", "boot", "wait for ssh"} {
		if !regexp.MustCompile(`(?m)^✓ ` + regexp.QuoteMeta(stage) + ` +\d+\.\ds$`).MatchString(r.stderr) {
			t.Errorf("start showed no %q stage:\n%s", stage, r.stderr)
		}
	}
	if out := e.exec("dev", "cat /root/note /etc/banger-note"); strings.Fields(out)[0] != "kept" || !strings.Contains(out, "system") {
		t.Errorf("/root/note and /etc/banger-note after restart: %q", out)
	}
	if got := e.show("dev").Runtime.GuestIP; got != ip {
		t.Errorf("address moved from %s to %s", ip, got)
	}

	// vCPUs and memory only while stopped.
	if r := e.banger("vm", "set", "dev", "--memory", "768M"); r.code != 1 || !strings.Contains(r.stderr, "stop it to change") {
		t.Errorf("set memory while running: %d %s", r.code, r.stderr)
	}
	e.must("vm", "set", "dev", "--nat=false") // live
	e.must("vm", "stop", "dev")
	if r := e.banger("vm", "set", "dev", "--disk", "512M"); r.code != 1 || !strings.Contains(r.stderr, "work disks only grow") {
		t.Errorf("shrinking the disk: %d %s", r.code, r.stderr)
	}
	e.must("vm", "set", "dev", "--memory", "768M", "--disk", "2G")
	e.must("vm", "start", "dev")
	memKB, _ := strconv.Atoi(strings.Fields(e.exec("dev", "grep MemTotal /proc/meminfo"))[1])
	if memKB < 600*1024 || memKB > 768*1024 {
		t.Errorf("guest MemTotal %d kB, want about 768 MiB", memKB)
	}
	sizeKB, _ := strconv.Atoi(strings.TrimSpace(e.exec("dev", "df -k --output=size /root | tail -1")))
	if sizeKB < 1800*1024 {
		t.Errorf("/root is %d kB, want about 2 GiB", sizeKB)
	}
	if out := e.exec("dev", "cat /root/note"); strings.TrimSpace(out) != "kept" {
		t.Errorf("/root/note after growing the disk: %q", out)
	}

	// rm refuses a running VM without --force.
	if r := e.banger("vm", "rm", "dev"); r.code != 1 || !strings.Contains(r.stderr, "is running; stop it first, or remove it with --force") {
		t.Errorf("rm of a running vm: %d %s", r.code, r.stderr)
	}
	e.must("vm", "rm", "--force", "dev")

	if out := e.must("vm", "ls").stdout; !strings.Contains(out, "no VMs") {
		t.Errorf("vm ls after rm: %s", out)
	}
	if pids := qemuFor(dir); len(pids) != 0 {
		t.Errorf("QEMU left after rm: %v", pids)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("vm directory %s left after rm", dir)
	}
	if rules := e.ns.Run(t, "iptables-save"); strings.Contains(rules, ip) {
		t.Errorf("rules for %s left after rm", ip)
	}
	// Only the pool's own ready tap remains (tap_pool_size = 1).
	if taps := e.taps(); len(taps) > 1 {
		t.Errorf("taps left after rm: %v", taps)
	}
	if det.Runtime.OverlayStrategy == "dm-snapshot" {
		if out, _ := exec.Command("dmsetup", "ls").Output(); strings.Contains(string(out), "banger-") {
			t.Errorf("dm devices left after rm:\n%s", out)
		}
	}
	kh, _ := os.ReadFile(e.home + "/.local/state/banger/known_hosts")
	if strings.Contains(string(kh), det.ID) {
		t.Errorf("host key of the removed vm still pinned:\n%s", kh)
	}
}

// hostOverlayStrategy is the overlay strategy banger should pick here:
// dm-snapshot where the kernel has device-mapper and dmsetup is
// installed, reflink where the VMs directory clones files, else copy.
func hostOverlayStrategy(vmDir string) string {
	misc, _ := os.ReadFile("/proc/misc")
	if _, err := exec.LookPath("dmsetup"); err == nil && bytes.Contains(misc, []byte("device-mapper")) {
		return "dm-snapshot"
	}
	probe := filepath.Join(vmDir, ".reflink-probe")
	defer os.Remove(probe)
	if exec.Command("cp", "--reflink=always", filepath.Join(vmDir, "system.ext4"), probe).Run() == nil {
		return "reflink"
	}
	return "copy"
}

// checkFirecrackerCalls asserts that the Firecracker double in vmDir
// received want, in this order among its calls, each accepted.
func checkFirecrackerCalls(t *testing.T, vmDir string, want ...string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vmDir, "firecracker-double.calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	i := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c struct {
			Method, Path, Fault string
			Status              int
			Body                struct {
				ActionType string `json:"action_type"`
			}
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("record line %q: %v", line, err)
		}
		call := strings.TrimSpace(c.Method + " " + c.Path + " " + c.Body.ActionType)
		got = append(got, fmt.Sprintf("%s → %d %s", call, c.Status, c.Fault))
		if i < len(want) && call == want[i] && c.Status == 204 {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("the double did not receive %q (accepted, in order); it received:\n%s", want[i:], strings.Join(got, "\n"))
	}
}
