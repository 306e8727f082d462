package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/rpc"
	"banger/internal/testutil/binaries"
	"banger/internal/vmm"
	"banger/internal/vmm/firecracker"
)

// BenchmarkControlPlaneStart/qemu: the same for the qemu driver, from
// the daemon receiving vm.start to QEMU launched and configured (its
// monitor answering that the guest runs: the daemon logs "vmm started"
// then), against spawning QEMU with the same command line and asking
// its monitor from a minimal QMP client.
//
// BenchmarkControlPlaneStart/firecracker: the control-plane time of
// starting a VM with the firecracker driver — from the daemon receiving
// vm.start to the Firecracker process (the test double) receiving
// InstanceStart — against the raw cost: spawning the same binary and
// sending the same API calls from a minimal client, in the same run,
// measured to the same point (the double's record of InstanceStart).
// The metric is ms-to-InstanceStart; ns/op includes booting the guest
// to SSH and stopping it, which are not part of the measure. Run with
// -benchtime 5x.
func BenchmarkControlPlaneStart(b *testing.B) {
	b.Run("qemu", func(b *testing.B) {
		e := newBenchEnv(b, `vmm = "qemu"`+"\n")
		e.must("vm", "create", "--no-start", "--name", "cp")
		det := e.show("cp")
		sock := filepath.Join(e.run, "banger", "bangerd.sock")
		daemonLog := filepath.Join(e.home, ".local", "state", "banger", "bangerd.log")
		var argv []string // QEMU's, as the driver ran it
		b.Run("banger", func(b *testing.B) {
			s := newSamples(b, "ms-to-configured")
			for b.Loop() {
				t0 := time.Now()
				var res api.VMDetail
				if err := rpc.Call(context.Background(), sock, api.MethodVMStart, api.VMRef{Name: "cp"}, &res); err != nil {
					b.Fatal(err)
				}
				s.add(ms(vmmStartedAfter(b, daemonLog, t0).Sub(t0)))
				b.StopTimer()
				argv = procCmdline(b, res.PID)
				e.must("vm", "stop", "--force", "cp")
				b.StartTimer()
			}
			s.report()
		})
		b.Run("raw", func(b *testing.B) {
			if argv == nil {
				b.Skip("no QEMU command line from the banger run")
			}
			raw := rawQEMUArgv(b, e, det, argv)
			s := newSamples(b, "ms-to-configured")
			for b.Loop() {
				t0 := time.Now()
				cmd := minimalQEMUStart(b, e, raw)
				s.add(ms(time.Since(t0)))
				b.StopTimer()
				cmd.Process.Kill()
				cmd.Wait()
				os.Remove(raw.qmp)
				b.StartTimer()
			}
			s.report()
		})
	})
	b.Run("firecracker", func(b *testing.B) {
		e := newVMEnvAs(b, os.Getuid(), `vmm = "firecracker"`+"\n")
		e.must("vm", "create", "--no-start", "--name", "cp")
		det := e.show("cp")
		record := filepath.Join(det.Runtime.VMDir, "firecracker-double.calls.jsonl")
		sock := filepath.Join(e.run, "banger", "bangerd.sock")

		b.Run("banger", func(b *testing.B) {
			s := newSamples(b, "ms-to-InstanceStart")
			for b.Loop() {
				t0 := time.Now()
				var res api.VMDetail
				if err := rpc.Call(context.Background(), sock, api.MethodVMStart, api.VMRef{Name: "cp"}, &res); err != nil {
					b.Fatal(err)
				}
				s.add(ms(instanceStartAfter(b, record, t0).Sub(t0)))
				b.StopTimer()
				e.must("vm", "stop", "--force", "cp")
				b.StartTimer()
			}
			s.report()
		})

		b.Run("raw", func(b *testing.B) {
			spec := rawFirecrackerSpec(b, e, det)
			bin := filepath.Join(binaries.FirecrackerDouble(b), "firecracker")
			s := newSamples(b, "ms-to-InstanceStart")
			for b.Loop() {
				t0 := time.Now()
				cmd := minimalFirecrackerStart(b, e, bin, spec)
				s.add(ms(instanceStartAfter(b, filepath.Join(spec.Dir, "firecracker-double.calls.jsonl"), t0).Sub(t0)))
				b.StopTimer()
				cmd.Process.Kill()
				cmd.Wait()
				os.Remove(spec.ControlSocket)
				os.Remove(spec.VSockPath)
				b.StartTimer()
			}
			s.report()
		})
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// instanceStartAfter is when the double recorded receiving InstanceStart,
// the first after t0.
func instanceStartAfter(b *testing.B, record string, t0 time.Time) time.Time {
	b.Helper()
	f, err := os.Open(record)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c struct {
			Time time.Time `json:"time"`
			Path string    `json:"path"`
			Body struct {
				ActionType string `json:"action_type"`
			} `json:"body"`
		}
		if json.Unmarshal(sc.Bytes(), &c) == nil && c.Path == "/actions" && c.Body.ActionType == firecracker.ActionInstanceStart && c.Time.After(t0) {
			return c.Time
		}
	}
	b.Fatalf("no InstanceStart after %s in %s", t0, record)
	return time.Time{}
}

// rawFirecrackerSpec is the spec banger gives the VM, on copies of its
// disks and on a tap of the raw run's own in the namespace (not on the
// bridge: the guest is killed as soon as it starts).
func rawFirecrackerSpec(b *testing.B, e *vmEnv, det api.VMDetail) vmm.Spec {
	dir := rawCopies(b, e, det, "bcp")
	var img struct {
		KernelPath string `json:"kernel_path"`
		InitrdPath string `json:"initrd_path"`
	}
	if err := json.Unmarshal([]byte(e.must("--json", "image", "show", det.ImageName).stdout), &img); err != nil {
		b.Fatal(err)
	}
	return vmm.Spec{
		VMID: det.ID, Name: det.Name, Dir: dir,
		KernelPath: img.KernelPath, InitrdPath: img.InitrdPath,
		Cmdline: "console=ttyS0 root=/dev/vda rw", VCPUs: det.Spec.VCPUCount, MemoryMiB: det.Spec.MemoryMiB,
		RootDisk: filepath.Join(dir, filepath.Base(det.Runtime.SystemOverlay)), WorkDisk: filepath.Join(dir, filepath.Base(det.Runtime.WorkDiskPath)),
		Tap: "rawtap0", MAC: det.Runtime.MAC, VSockCID: det.Runtime.VSockCID, VSockPath: filepath.Join(dir, "v.sock"),
		ConsoleLog: filepath.Join(dir, "console.log"), ControlSocket: filepath.Join(dir, "api.sock"),
	}
}

// minimalFirecrackerStart is what any program starting Firecracker must
// do, and no more: make the log and metrics files, spawn it in the
// namespace, wait for its socket (polling every 100 µs), send the
// configuration with a plain HTTP client, then InstanceStart.
func minimalFirecrackerStart(b *testing.B, e *vmEnv, bin string, spec vmm.Spec) *exec.Cmd {
	for _, f := range []string{"firecracker.log", "metrics.json"} {
		fh, err := os.OpenFile(filepath.Join(spec.Dir, f), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		fh.Close()
	}
	cmd := exec.Command(bin, "--api-sock", spec.ControlSocket)
	cmd.Dir = spec.Dir
	if err := e.ns.Do(cmd.Start); err != nil {
		b.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(spec.ControlSocket); err == nil {
			break
		}
		if i > 100000 {
			b.Fatal("no API socket")
		}
		time.Sleep(100 * time.Microsecond)
	}
	// Firecracker binds its socket before it listens: a connection in
	// between is refused, and any client retries it.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		for {
			c, err := (&net.Dialer{}).DialContext(ctx, "unix", spec.ControlSocket)
			if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
				return c, err
			}
			time.Sleep(100 * time.Microsecond)
		}
	}}}
	defer hc.CloseIdleConnections()
	put := func(path string, body any) {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest("PUT", "http://localhost"+path, strings.NewReader(string(data)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			b.Fatalf("PUT %s: %d", path, resp.StatusCode)
		}
	}
	for _, r := range firecracker.Requests(spec) {
		put(r.Path, r.Body)
	}
	put("/actions", firecracker.InstanceAction{ActionType: firecracker.ActionInstanceStart})
	return cmd
}

// vmmStartedAfter is the time of the daemon's first "vmm started" log
// line after t0.
func vmmStartedAfter(b *testing.B, path string, t0 time.Time) time.Time {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "vmm started" && l.Time.After(t0) {
			return l.Time
		}
	}
	b.Fatalf("no \"vmm started\" after %s in %s", t0, path)
	return time.Time{}
}

func procCmdline(b *testing.B, pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		b.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

type rawQEMU struct {
	argv []string
	qmp  string
}

// rawQEMUArgv is the driver's QEMU command line moved to copies of the
// VM's disks, a tap of the raw run's own (on no bridge: the guest is
// killed as soon as it starts), and a QMP socket QEMU listens on by
// path, as a minimal client would have it.
func rawQEMUArgv(b *testing.B, e *vmEnv, det api.VMDetail, argv []string) rawQEMU {
	dir := rawCopies(b, e, det, "bcq")
	r := rawQEMU{qmp: filepath.Join(dir, "qmp.sock")}
	for _, a := range argv {
		a = strings.ReplaceAll(a, det.Runtime.VMDir, dir)
		switch {
		case strings.HasPrefix(a, "tap,"):
			a = "tap,id=net0,ifname=rawtap0,script=no,downscript=no"
		case strings.HasPrefix(a, "socket,id=qmp,fd="):
			a = "socket,id=qmp,path=" + r.qmp + ",server=on,wait=off"
		}
		r.argv = append(r.argv, a)
	}
	return r
}

// minimalQEMUStart spawns QEMU in the namespace, waits for its QMP
// socket (polling every 100 µs), and asks over QMP until the guest runs:
// greeting, qmp_capabilities, query-status.
func minimalQEMUStart(b *testing.B, e *vmEnv, r rawQEMU) *exec.Cmd {
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	if err := e.ns.Do(cmd.Start); err != nil {
		b.Fatal(err)
	}
	var conn net.Conn
	for i := 0; ; i++ {
		var err error
		if conn, err = net.Dial("unix", r.qmp); err == nil {
			break
		}
		if i > 100000 {
			b.Fatalf("no QMP socket: %v", err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	readReturn := func() string {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(line, `"return"`) {
				return line
			}
		}
	}
	if _, err := rd.ReadString('\n'); err != nil { // greeting
		b.Fatal(err)
	}
	conn.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n"))
	readReturn()
	conn.Write([]byte(`{"execute":"query-status"}` + "\n"))
	if st := readReturn(); !strings.Contains(st, `"running"`) {
		b.Fatalf("query-status: %s", st)
	}
	return cmd
}

// rawCopies is a directory (removed at cleanup) holding copies of the
// VM's system overlay and work disk, and a tap rawtap0 of the raw run's
// own in the namespace, on no bridge: a raw run's guest is killed as
// soon as it starts.
func rawCopies(b *testing.B, e *vmEnv, det api.VMDetail, prefix string) string {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	for _, f := range []string{det.Runtime.SystemOverlay, det.Runtime.WorkDiskPath} {
		if out, err := exec.Command("cp", "--sparse=always", f, dir).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
	e.ns.Run(b, "ip", "tuntap", "add", "dev", "rawtap0", "mode", "tap", "user", fmt.Sprint(os.Getuid()))
	e.ns.Run(b, "ip", "link", "set", "rawtap0", "up")
	return dir
}
