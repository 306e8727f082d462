package fcdouble_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/testutil/binaries"
	"banger/internal/testutil/testimage"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
	"banger/test/fcdouble"
)

// TestDefinitionIsFirecrackers: the definition the double embeds is the
// one in ../shared/firecracker-api, unchanged, and parses.
func TestDefinitionIsFirecrackers(t *testing.T) {
	api, err := fcdouble.LoadAPI(fcdouble.DefinitionYAML())
	if err != nil {
		t.Fatal(err)
	}
	if api.Version != fcdouble.Version {
		t.Errorf("definition version %q, double %q", api.Version, fcdouble.Version)
	}
	shared, err := os.ReadFile("../../../shared/firecracker-api/firecracker-v1.16.1.yaml")
	if err != nil {
		t.Skipf("no shared copy to compare with: %v", err)
	}
	if !bytes.Equal(shared, fcdouble.DefinitionYAML()) {
		t.Error("test/fcdouble/firecracker-v1.16.1.yaml differs from ../shared/firecracker-api's")
	}
}

// running is a started double.
type running struct {
	sock, dir, record string
	cmd               *exec.Cmd
	stderr            *bytes.Buffer
	c                 *firecracker.Client
}

func startDouble(t *testing.T) *running {
	t.Helper()
	bin := filepath.Join(binaries.FirecrackerDouble(t), "firecracker")
	dir := t.TempDir()
	r := &running{sock: filepath.Join(dir, "api.sock"), dir: dir, record: filepath.Join(dir, "firecracker-double.calls.jsonl"), stderr: &bytes.Buffer{}}
	r.cmd = exec.Command(bin, "--api-sock", r.sock)
	r.cmd.Dir = dir
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(r.sock); err == nil {
			break
		}
		if i == 500 {
			t.Fatalf("the double opened no socket: %s", r.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.c = firecracker.NewClient(r.sock)
	t.Cleanup(r.c.Close)
	return r
}

// refused asserts err is Firecracker's 400 with a fault message holding
// want.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	var apiErr *firecracker.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("%s: want a 400 refusal containing %q, got %v", what, want, err)
		return
	}
	if apiErr.Status != 400 || !strings.Contains(apiErr.Fault, want) {
		t.Errorf("%s: got %d %q, want 400 containing %q", what, apiErr.Status, apiErr.Fault, want)
	}
}

// rawPut sends body as it is, bypassing the client's own size check.
func rawPut(t *testing.T, sock, path string, body []byte) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest("PUT", "http://localhost"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var f struct {
		FaultMessage string `json:"fault_message"`
	}
	json.Unmarshal(out, &f)
	return resp.StatusCode, f.FaultMessage
}

func touch(t *testing.T, path string, data string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStrict: requests Firecracker refuses, the double refuses the same
// way — 400 and a fault message — and records them all.
func TestStrict(t *testing.T) {
	r := startDouble(t)
	ctx := context.Background()
	kernel := touch(t, filepath.Join(r.dir, "vmlinux"), "not an ELF")
	disk := touch(t, filepath.Join(r.dir, "root.ext4"), "")
	other := touch(t, filepath.Join(r.dir, "other.ext4"), "")
	log := touch(t, filepath.Join(r.dir, "fc.log"), "")

	refused(t, "InstanceStart without a boot source", r.c.Action(ctx, firecracker.ActionInstanceStart), "Cannot start microvm without kernel configuration.")

	// The API definition: a misspelled field, a wrong type, a value
	// outside an enum, a missing required field, bounds.
	refused(t, "misspelled field", r.c.Put(ctx, "/boot-source", map[string]any{"kernel_image_pat": kernel}), "unknown field `kernel_image_pat`")
	refused(t, "missing required field", r.c.Put(ctx, "/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": disk}), "missing field `is_root_device`")
	refused(t, "string for an integer", r.c.Put(ctx, "/machine-config", map[string]any{"vcpu_count": "2", "mem_size_mib": 512}), "expected an integer")
	refused(t, "vcpu_count above 32", r.c.Put(ctx, "/machine-config", firecracker.MachineConfig{VCPUCount: 33, MemSizeMib: 512}), "invalid value: integer `33`")
	refused(t, "enum", r.c.Put(ctx, "/logger", map[string]any{"log_path": log, "level": "Loud"}), "unknown variant `Loud`")
	refused(t, "unknown action", r.c.Put(ctx, "/actions", map[string]any{"action_type": "Reboot"}), "unknown variant `Reboot`")
	refused(t, "vsock CID below 3", r.c.Put(ctx, "/vsock", firecracker.Vsock{GuestCID: 2, UDSPath: filepath.Join(r.dir, "v.sock")}), "invalid value: integer `2`, expected at least 3")
	refused(t, "nested unknown field", r.c.Put(ctx, "/drives/rootfs", map[string]any{"drive_id": "rootfs", "path_on_host": disk, "is_root_device": true, "rate_limiter": map[string]any{"bandwith": map[string]any{}}}), "unknown field `bandwith`")
	refused(t, "unknown path", r.c.Put(ctx, "/kernel", map[string]any{}), "Invalid request method and/or path: PUT /kernel.")
	refused(t, "empty body", r.c.Put(ctx, "/boot-source", nil), "")
	// Logger levels are case-insensitive in Firecracker.
	if err := r.c.Put(ctx, "/logger", firecracker.Logger{LogPath: log, Level: "off"}); err != nil {
		t.Errorf("level off: %v", err)
	}

	// Payload size: 51200 bytes pass, one more is refused.
	pad := func(n int) []byte {
		b := []byte(fmt.Sprintf(`{"kernel_image_path":%q,"boot_args":""}`, kernel))
		return append(b[:len(b)-2], append(bytes.Repeat([]byte("x"), n-len(b)), '"', '}')...)
	}
	if status, fault := rawPut(t, r.sock, "/boot-source", pad(fcdouble.MaxPayload)); status != 204 {
		t.Errorf("a 51200-byte body: %d %s", status, fault)
	}
	if status, fault := rawPut(t, r.sock, "/boot-source", pad(fcdouble.MaxPayload+1)); status != 400 || !strings.Contains(fault, "larger than the limit of 51200") {
		t.Errorf("a 51201-byte body: %d %q", status, fault)
	}

	// Firecracker's own rules.
	refused(t, "missing kernel", r.c.Put(ctx, "/boot-source", firecracker.BootSource{KernelImagePath: "/nonexistent/vmlinux"}), "The kernel file cannot be opened: No such file or directory (os error 2)")
	refused(t, "missing log file", r.c.Put(ctx, "/logger", firecracker.Logger{LogPath: filepath.Join(r.dir, "none.log")}), "No such file or directory")
	refused(t, "missing metrics file", r.c.Put(ctx, "/metrics", firecracker.Metrics{MetricsPath: filepath.Join(r.dir, "none.json")}), "No such file or directory")
	refused(t, "path and body ids differ", r.c.Put(ctx, "/drives/work", firecracker.Drive{DriveID: "rootfs", PathOnHost: disk}), "does not match the id from the body")
	refused(t, "missing disk", r.c.Put(ctx, "/drives/work", firecracker.Drive{DriveID: "work", PathOnHost: "/nonexistent.ext4"}), "No such file or directory")
	refused(t, "missing tap", r.c.Put(ctx, "/network-interfaces/eth0", firecracker.NetworkInterface{IfaceID: "eth0", HostDevName: "nosuchtap0"}), "Open tap device failed")
	existing := touch(t, filepath.Join(r.dir, "taken.sock"), "")
	refused(t, "vsock path exists", r.c.Put(ctx, "/vsock", firecracker.Vsock{GuestCID: 3, UDSPath: existing}), "Address already in use")
	refused(t, "SendCtrlAltDel before start", r.c.Action(ctx, firecracker.ActionSendCtrlAltDel), "not supported before starting the microVM")

	if err := r.c.Put(ctx, "/drives/rootfs", firecracker.Drive{DriveID: "rootfs", PathOnHost: disk, IsRootDevice: true}); err != nil {
		t.Fatal(err)
	}
	refused(t, "a second root drive", r.c.Put(ctx, "/drives/other", firecracker.Drive{DriveID: "other", PathOnHost: other, IsRootDevice: true}), "A root block device already exists!")
	if err := r.c.Put(ctx, "/boot-source", firecracker.BootSource{KernelImagePath: kernel}); err != nil {
		t.Fatal(err)
	}
	refused(t, "a kernel that is not ELF", r.c.Action(ctx, firecracker.ActionInstanceStart), "Cannot load kernel")

	var info firecracker.InstanceInfo
	if err := r.c.Get(ctx, "/", &info); err != nil || info.State != "Not started" || info.VMMVersion != fcdouble.Version {
		t.Errorf("GET / = %+v, %v", info, err)
	}

	// The record has every call, refused or not.
	data, _ := os.ReadFile(r.record)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var last fcdouble.Call
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if len(lines) < 25 || last.Method != "GET" || last.Path != "/" || last.Status != 200 {
		t.Errorf("record: %d lines, last %+v", len(lines), last)
	}
	var big fcdouble.Call
	for _, l := range lines {
		var c fcdouble.Call
		json.Unmarshal([]byte(l), &c)
		if c.BodySize == fcdouble.MaxPayload+1 {
			big = c
		}
	}
	if big.Status != 400 || !strings.Contains(big.Fault, "larger than the limit") {
		t.Errorf("record of the oversized body: %+v", big)
	}
}

// TestSocketMustNotExist: like Firecracker, the double will not start on
// an API socket path that exists.
func TestSocketMustNotExist(t *testing.T) {
	bin := filepath.Join(binaries.FirecrackerDouble(t), "firecracker")
	sock := touch(t, filepath.Join(t.TempDir(), "api.sock"), "")
	out, err := exec.Command(bin, "--api-sock", sock).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Failed to open the API socket") {
		t.Errorf("started on an existing path: %v %s", err, out)
	}
	if out, err := exec.Command(bin, "--api-sock", sock, "--no-seccomp").CombinedOutput(); err == nil || !strings.Contains(string(out), "--no-seccomp") {
		t.Errorf("an argument it does not take: %v %s", err, out)
	}
}

// TestRefusedAfterStart boots the test image's kernel (no network, no
// waiting for the guest) and checks that every pre-boot call is then
// refused as Firecracker refuses it, while runtime calls work.
func TestRefusedAfterStart(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("needs qemu-system-x86_64")
	}
	img := testimage.Get(t)
	r := startDouble(t)
	ctx := context.Background()
	root := filepath.Join(r.dir, "root.ext4")
	if out, err := exec.Command("cp", "--sparse=always", img.Rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	metrics := touch(t, filepath.Join(r.dir, "metrics.json"), "")
	boot := firecracker.BootSource{KernelImagePath: img.Kernel, InitrdPath: img.Initrd, BootArgs: "console=ttyS0 root=/dev/vda"}
	for _, req := range []firecracker.Request{
		{Path: "/metrics", Body: firecracker.Metrics{MetricsPath: metrics}},
		{Path: "/machine-config", Body: firecracker.MachineConfig{VCPUCount: 1, MemSizeMib: 256}},
		{Path: "/boot-source", Body: boot},
		{Path: "/drives/rootfs", Body: firecracker.Drive{DriveID: "rootfs", PathOnHost: root, IsRootDevice: true}},
	} {
		if err := r.c.Put(ctx, req.Path, req.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.c.Action(ctx, firecracker.ActionInstanceStart); err != nil {
		t.Fatalf("InstanceStart: %v\n%s", err, r.stderr)
	}
	after := "The requested operation is not supported after starting the microVM."
	refused(t, "PUT /boot-source", r.c.Put(ctx, "/boot-source", boot), after)
	refused(t, "PUT /machine-config", r.c.Put(ctx, "/machine-config", firecracker.MachineConfig{VCPUCount: 2, MemSizeMib: 256}), after)
	refused(t, "PUT /drives", r.c.Put(ctx, "/drives/rootfs", firecracker.Drive{DriveID: "rootfs", PathOnHost: root, IsRootDevice: true}), after)
	refused(t, "PUT /logger", r.c.Put(ctx, "/logger", firecracker.Logger{LogPath: metrics}), after)
	refused(t, "PUT /vsock", r.c.Put(ctx, "/vsock", firecracker.Vsock{GuestCID: 3, UDSPath: filepath.Join(r.dir, "v.sock")}), after)
	refused(t, "InstanceStart again", r.c.Action(ctx, firecracker.ActionInstanceStart), after)
	// A body the definition refuses is refused for that, first.
	refused(t, "misspelled field after start", r.c.Put(ctx, "/boot-source", map[string]any{"kernel_image_pat": img.Kernel}), "unknown field")

	var info firecracker.InstanceInfo
	if err := r.c.Get(ctx, "/", &info); err != nil || info.State != "Running" {
		t.Errorf("GET / = %+v, %v", info, err)
	}
	if err := r.c.Put(ctx, "/actions", firecracker.InstanceAction{ActionType: firecracker.ActionFlushMetrics}); err != nil {
		t.Error(err)
	}
	if data, _ := os.ReadFile(metrics); !bytes.Contains(data, []byte(`"put_api_requests"`)) {
		t.Errorf("metrics after FlushMetrics: %q", data)
	}
	// QEMU runs as the double's child, and dies with it.
	qemuPID := childOf(r.cmd.Process.Pid)
	if qemuPID == 0 {
		t.Fatal("no QEMU under the double")
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	h, _ := vmm.HandleFor("qemu", qemuPID, "")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := vmm.Wait(wctx, h); err != nil {
		t.Errorf("QEMU outlived the killed double: %v", err)
	}
}

// childOf is the first process whose parent is pid, 0 if none.
func childOf(pid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		var ppid, child int
		fmt.Sscan(fields[1], &ppid)
		if ppid == pid {
			fmt.Sscan(e.Name(), &child)
			return child
		}
	}
	return 0
}
