package firecracker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/guestapi"
	"banger/internal/sshkey"
	"banger/internal/testutil/binaries"
	"banger/internal/testutil/guestboot"
	"banger/internal/testutil/netns"
	"banger/internal/testutil/testimage"
	"banger/internal/vmm"
)

// recordedCall is a line of the double's record.
type recordedCall struct {
	Time   time.Time       `json:"time"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"`
	Status int             `json:"status"`
	Fault  string          `json:"fault"`
}

func readRecord(t *testing.T, path string) []recordedCall {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []recordedCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c recordedCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("record line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	return calls
}

// TestBootThroughDouble boots the real test image with this driver and
// the Firecracker test double (which runs it under QEMU) in a private
// network namespace: the driver's calls are exactly the configuration
// Requests names, all accepted; SSH works; metrics flush; a pre-boot
// call after start is refused as Firecracker refuses it; Stop's
// Ctrl+Alt+Del ends the guest and the process.
func TestBootThroughDouble(t *testing.T) {
	netns.Require(t)
	guestboot.Require(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun for the guest's tap")
	}
	img := testimage.Get(t)
	n := guestboot.NewNetwork(t)
	d := &Driver{
		Binary: filepath.Join(binaries.FirecrackerDouble(t), "firecracker"),
		Wrap: func(argv []string) []string {
			return append([]string{"ip", "netns", "exec", n.NS.Name}, argv...)
		},
	}

	dir := t.TempDir()
	addr, tap := n.NewTap(t)
	client, _ := sshkey.Generate("test")
	host, _ := sshkey.Generate("host")
	work := filepath.Join(dir, "work.ext4")
	if err := guestboot.MakeWorkDisk(img.WorkSeed, work, "256M", client, host); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.ext4")
	if out, err := exec.Command("cp", "--sparse=always", img.Rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copy the root disk: %v: %s", err, out)
	}
	cfg := guestapi.Config{Address: netip.PrefixFrom(addr, n.Prefix.Bits()), Gateway: n.Prefix.Addr(), Hostname: "fcguest"}
	guestArgs, err := cfg.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	spec := vmm.Spec{
		VMID: "fcguest", Name: "fcguest", Dir: dir,
		KernelPath: img.Kernel, InitrdPath: img.Initrd,
		Cmdline: "console=ttyS0 root=/dev/vda rw " + guestArgs,
		VCPUs:   1, MemoryMiB: 512,
		RootDisk: root, WorkDisk: work,
		Tap: tap, MAC: guestboot.MAC(addr),
		VSockCID: 7, VSockPath: filepath.Join(dir, "vsock.sock"),
		ConsoleLog: filepath.Join(dir, "console.log"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	h, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start returned after %s (pid %d)", time.Since(started).Round(time.Millisecond), h.PID)
	gone := make(chan struct{})
	go func() {
		vmm.Wait(context.Background(), h)
		close(gone)
	}()
	t.Cleanup(func() {
		vmm.KillProcess(h)
		<-gone
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, LogFile))
			console, _ := os.ReadFile(spec.ConsoleLog)
			t.Logf("firecracker.log:\n%s\nconsole:\n%s", log, console)
		}
	})

	// What the driver sent: the configuration, in order, then
	// InstanceStart, each accepted.
	calls := readRecord(t, filepath.Join(dir, "firecracker-double.calls.jsonl"))
	var want []string
	for _, r := range Requests(spec) {
		want = append(want, "PUT "+r.Path)
	}
	want = append(want, "PUT /actions")
	if len(calls) != len(want) {
		t.Fatalf("the double received %d calls, want %d: %+v", len(calls), len(want), calls)
	}
	for i, c := range calls {
		if c.Method+" "+c.Path != want[i] || c.Status != 204 {
			t.Errorf("call %d: %s %s → %d %s, want %s → 204", i, c.Method, c.Path, c.Status, c.Fault, want[i])
		}
	}

	sc, err := guestboot.WaitSSH(ctx, n.NS, addr, client.Signer, host.Public(), gone)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	t.Logf("SSH login %s after Start was called", time.Since(started).Round(100*time.Millisecond))
	out, err := guestboot.Run(sc, "findmnt -no SOURCE /; findmnt -no SOURCE /root; hostname; grep -c . /proc/cmdline")
	if err != nil {
		t.Fatalf("over SSH: %v\n%s", err, out)
	}
	if lines := strings.Fields(out); len(lines) < 3 || lines[0] != guestapi.DefaultRootDevice || lines[1] != guestapi.DefaultWorkDevice || lines[2] != "fcguest" {
		t.Errorf("root, /root and hostname in the guest: %q", out)
	}

	c := NewClient(h.ControlSocket)
	defer c.Close()
	var info InstanceInfo
	if err := c.Get(ctx, "/", &info); err != nil || info.State != "Running" {
		t.Errorf("GET / = %+v, %v", info, err)
	}
	// A pre-boot call after InstanceStart.
	err = c.Put(ctx, "/boot-source", BootSource{KernelImagePath: img.Kernel})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Fault != "The requested operation is not supported after starting the microVM." {
		t.Errorf("PUT /boot-source after start: %v", err)
	}
	if err := c.Action(ctx, ActionInstanceStart); err == nil {
		t.Error("a second InstanceStart was accepted")
	}
	// Metrics: a line on FlushMetrics, with the guest's disk reads.
	if err := c.Action(ctx, ActionFlushMetrics); err != nil {
		t.Fatal(err)
	}
	metrics, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	lines := strings.Split(strings.TrimSpace(string(metrics)), "\n")
	var m struct {
		Block map[string]uint64 `json:"block_rootfs"`
		Net   map[string]uint64 `json:"net_eth0"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil || m.Block["read_bytes"] == 0 || m.Net["rx_bytes_count"] == 0 {
		t.Errorf("metrics line %q: %+v %v", lines[len(lines)-1], m, err)
	}

	stopStart := time.Now()
	if err := (&Driver{}).Stop(ctx, h); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop (SendCtrlAltDel until the process exited) took %s", time.Since(stopStart).Round(10*time.Millisecond))
	if vmm.Alive(h) {
		t.Fatal("the double is alive after Stop")
	}
	console, _ := os.ReadFile(spec.ConsoleLog)
	for _, want := range []string{"Linux version", "reboot: Restarting system"} {
		if !strings.Contains(string(console), want) {
			t.Errorf("console log lacks %q", want)
		}
	}
	if _, err := os.Stat(h.ControlSocket); !os.IsNotExist(err) {
		t.Errorf("API socket left behind: %v", err)
	}
}
