package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/rpc"
)

// childDialEnv makes the test binary act as a client: it pings the socket
// named by the variable and prints the error response it gets as JSON.
const childDialEnv = "BANGER_TEST_DIAL_SOCKET"

func TestMain(m *testing.M) {
	if sock := os.Getenv(childDialEnv); sock != "" {
		os.Exit(dialChild(sock))
	}
	os.Exit(m.Run())
}

func dialChild(sock string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rpc.Call(ctx, sock, api.MethodDaemonShutdown, nil, nil)
	var remote *rpc.ErrorResponse
	if !errors.As(err, &remote) {
		fmt.Fprintf(os.Stderr, "want an RPC error, got %v\n", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(remote)
	return 0
}

var opIDRE = regexp.MustCompile(`^op-[0-9a-f]{12}$`)

// serveDaemon runs a Daemon (without store) on a socket in dir and returns
// the socket path.
func serveDaemon(t testing.TB, d *Daemon, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "bangerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

func TestDaemonRefusesAnotherUID(t *testing.T) {
	var logs bytes.Buffer
	d := &Daemon{logger: slog.New(slog.NewJSONHandler(&logs, nil)), ownerUID: uint32(os.Getuid()) + 1}
	sock := serveDaemon(t, d, t.TempDir())
	for _, method := range []string{api.MethodDaemonPing, api.MethodDaemonShutdown, "vm.list"} {
		err := rpc.Call(context.Background(), sock, method, nil, nil)
		var remote *rpc.ErrorResponse
		if !errors.As(err, &remote) || remote.Code != rpc.CodeUnauthorized {
			t.Fatalf("%s from uid %d: got %v, want unauthorized", method, os.Getuid(), err)
		}
		if !opIDRE.MatchString(remote.OpID) || !errors.Is(err, errdefs.ErrUnauthorized) {
			t.Errorf("%s: unauthorized error %+v lacks an op id or the sentinel", method, remote)
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"code":"unauthorized"`)) {
		t.Errorf("refusals were not logged:\n%s", logs.String())
	}
}

func TestDaemonAnswersItsOwner(t *testing.T) {
	d := &Daemon{logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), ownerUID: uint32(os.Getuid()), logLevel: "info"}
	sock := serveDaemon(t, d, t.TempDir())
	var res api.PingResult
	if err := rpc.Call(context.Background(), sock, api.MethodDaemonPing, nil, &res); err != nil {
		t.Fatal(err)
	}
	if res.PID != os.Getpid() || res.ProtocolVersion != 1 || res.LogLevel != "info" {
		t.Errorf("ping = %+v", res)
	}
}

// TestConnectionFromAnotherUserIsUnauthorized connects to a live daemon
// from a process that really runs as another uid. The daemon's socket
// normally sits in a 0700 directory; here it is opened up so that the
// SO_PEERCRED check itself is what refuses the stranger.
func TestConnectionFromAnotherUserIsUnauthorized(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "bangerd-auth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), ownerUID: 0}
	sock := serveDaemon(t, d, dir)
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}

	// The test binary's own directory is private to root; run a copy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "client")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(child, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(child)
	cmd.Env = append(os.Environ(), childDialEnv+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client as uid %d: %v\n%s", nobody, err, stderr.String())
	}
	var got rpc.ErrorResponse
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client printed %q: %v", out, err)
	}
	if got.Code != rpc.CodeUnauthorized || !opIDRE.MatchString(got.OpID) {
		t.Fatalf("uid %d got %+v, want unauthorized with an op id", nobody, got)
	}
	if want := fmt.Sprintf("uid %d may not use the banger daemon of uid 0", nobody); got.Message != want {
		t.Errorf("message = %q, want %q", got.Message, want)
	}
	// The stranger's daemon.shutdown was not obeyed.
	if err := rpc.Call(context.Background(), sock, api.MethodDaemonPing, nil, nil); err != nil {
		t.Fatalf("daemon no longer answers its owner: %v", err)
	}
}
