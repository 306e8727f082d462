package firecracker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/vmm"
)

// serveAPI serves handler on a unix socket for the test's life.
func serveAPI(t *testing.T, handler http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestClientSurfacesFaultMessage(t *testing.T) {
	var got map[string]any
	sock := serveAPI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &got)
		if r.URL.Path == "/boot-source" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"fault_message":"The requested operation is not supported after starting the microVM."}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	c := NewClient(sock)
	defer c.Close()
	ctx := context.Background()
	if err := c.Put(ctx, "/machine-config", MachineConfig{VCPUCount: 2, MemSizeMib: 512}); err != nil {
		t.Fatal(err)
	}
	if got["vcpu_count"] != float64(2) || got["mem_size_mib"] != float64(512) || len(got) != 2 {
		t.Fatalf("machine-config body %v", got)
	}
	err := c.Put(ctx, "/boot-source", BootSource{KernelImagePath: "/k"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(err.Error(), "PUT /boot-source: 400: The requested operation is not supported") {
		t.Fatalf("refusal: %v", err)
	}
	big := BootSource{KernelImagePath: "/k", BootArgs: strings.Repeat("x", MaxBody)}
	if err := c.Put(ctx, "/boot-source", big); err == nil || IsAPIError(err) {
		t.Fatalf("oversized body sent: %v", err)
	}
}

func TestRequests(t *testing.T) {
	spec := vmm.Spec{VMID: "abc", Dir: "/vm", KernelPath: "/k", InitrdPath: "/i", Cmdline: "console=ttyS0",
		VCPUs: 2, MemoryMiB: 512, RootDisk: "/vm/root", WorkDisk: "/vm/work", Tap: "bgtap0",
		MAC: "52:54:00:00:00:02", VSockCID: 5, VSockPath: "/run/v.sock", ConsoleLog: "/vm/console.log"}
	var paths []string
	for _, r := range Requests(spec) {
		paths = append(paths, r.Path)
	}
	want := "/logger /metrics /machine-config /boot-source /drives/rootfs /drives/work /network-interfaces/eth0 /vsock"
	if strings.Join(paths, " ") != want {
		t.Fatalf("requests %v, want %s", paths, want)
	}
	boot := Requests(spec)[3].Body.(BootSource)
	if !strings.HasPrefix(boot.BootArgs, "console=ttyS0 reboot=k panic=1") || strings.Contains(boot.BootArgs, "nopnp") {
		t.Fatalf("boot args %q", boot.BootArgs)
	}
	if m := Requests(spec)[1].Body.(Metrics); m.MetricsPath != "/vm/metrics.json" {
		t.Fatalf("metrics path %q", m.MetricsPath)
	}
	spec.VSockCID, spec.Tap, spec.WorkDisk = 0, "", ""
	if n := len(Requests(spec)); n != 5 {
		t.Fatalf("%d requests without work disk, tap and vsock; want 5", n)
	}
}

func TestWatchFor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.sock")
	w, err := watchFor(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, "other"), nil, 0o600)
		time.Sleep(50 * time.Millisecond)
		net.Listen("unix", path)
	}()
	if err := w.wait(context.Background(), 5*time.Second, nil); err != nil {
		t.Fatal(err)
	}

	path2 := filepath.Join(dir, "never.sock")
	w2, _ := watchFor(path2)
	defer w2.Close()
	exited := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(exited) })
	if err := w2.wait(context.Background(), 5*time.Second, exited); !errors.Is(err, errExited) {
		t.Fatalf("wait after exit: %v", err)
	}
	start := time.Now()
	if err := w2.wait(context.Background(), 100*time.Millisecond, nil); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("wait timeout: %v after %s", err, time.Since(start))
	}
}

// TestClientWaitsForListen: Firecracker binds its API socket before it
// listens, so the socket can exist and refuse connections; the client
// retries that briefly instead of failing the start.
func TestClientWaitsForListen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		syscall.Listen(fd, 1)
		ln, err := net.FileListener(os.NewFile(uintptr(fd), "api"))
		if err != nil {
			return
		}
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	}()
	if _, err := net.Dial("unix", sock); err == nil {
		t.Fatal("the socket accepted before listen")
	}
	c := NewClient(sock)
	defer c.Close()
	if err := c.Put(context.Background(), "/machine-config", MachineConfig{VCPUCount: 1, MemSizeMib: 128}); err != nil {
		t.Fatalf("PUT while the socket was not yet listening: %v", err)
	}
}
