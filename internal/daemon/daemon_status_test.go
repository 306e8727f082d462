package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/doctor"
	"banger/internal/helperapi"
	"banger/internal/helperclient"
	"banger/internal/opid"
	"banger/internal/rpc"
	"banger/internal/tappool"
)

// newStatusDaemon is a Daemon (without store) that knows its helper and
// has a tap pool of size 2 that nothing refills.
func newStatusDaemon(helperSocket string) *Daemon {
	helper := helperclient.Client{Socket: helperSocket}
	return &Daemon{
		logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		ownerUID: uint32(os.Getuid()),
		logLevel: "info",
		helper:   helper,
		tapPool:  tappool.New(helper, 2, nil),
	}
}

func TestStatusReportsUnreachableHelper(t *testing.T) {
	helperSock := filepath.Join(t.TempDir(), "helper.sock")
	sock := serveDaemon(t, newStatusDaemon(helperSock), t.TempDir())

	start := time.Now()
	var res api.StatusResult
	if err := rpc.Call(context.Background(), sock, api.MethodDaemonStatus, nil, &res); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > doctor.HelperTimeout {
		t.Errorf("daemon.status took %s with no helper listening", took)
	}
	if res.PID != os.Getpid() || res.ProtocolVersion != 1 || res.LogLevel != "info" {
		t.Errorf("status lacks what ping says: %+v", res.PingResult)
	}
	h := res.Helper
	if h.Reachable || h.Socket != helperSock || h.Version != "" || h.Bridge != (helperapi.BridgeInfo{}) {
		t.Errorf("helper = %+v, want unreachable at %s", h, helperSock)
	}
	want := "banger-helper is unavailable at " + helperSock + ": not running; install it with 'sudo banger system install'"
	if !strings.Contains(h.Error, want) {
		t.Errorf("helper error = %q, want it to say %q", h.Error, want)
	}
	if res.TapPool != (api.TapPoolStatus{Size: 2}) {
		t.Errorf("tap pool = %+v", res.TapPool)
	}
}

// TestStatusReportsHungHelper: a helper that accepts and never answers
// must not hold daemon.status beyond its short timeout.
func TestStatusReportsHungHelper(t *testing.T) {
	helperSock := filepath.Join(t.TempDir(), "helper.sock")
	ln, err := listenSocket(helperSock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the backlog holds the connection; nobody answers
	sock := serveDaemon(t, newStatusDaemon(helperSock), t.TempDir())

	start := time.Now()
	var res api.StatusResult
	if err := rpc.Call(context.Background(), sock, api.MethodDaemonStatus, nil, &res); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > doctor.HelperTimeout+time.Second {
		t.Errorf("daemon.status took %s with a hung helper", took)
	}
	if res.Helper.Reachable || !strings.Contains(res.Helper.Error, "deadline exceeded") {
		t.Errorf("helper = %+v, want unreachable: deadline exceeded", res.Helper)
	}
}

func TestStatusReportsReachableHelper(t *testing.T) {
	helper := newFakeHelper(t)
	helper.serve(t)
	sock := serveDaemon(t, newStatusDaemon(helper.socket), t.TempDir())

	ctx := opid.With(context.Background(), "op-00000000cafe")
	var res api.StatusResult
	if err := rpc.Call(ctx, sock, api.MethodDaemonStatus, nil, &res); err != nil {
		t.Fatal(err)
	}
	want := api.HelperStatus{
		Socket:    helper.socket,
		Reachable: true,
		Version:   "v9.8.7",
		Bridge:    helperapi.BridgeInfo{Name: "br-fc", Address: "172.16.0.1/24", Exists: true, Up: true},
	}
	if res.Helper != want {
		t.Errorf("helper = %+v, want %+v", res.Helper, want)
	}
	// The CLI's op id reached the helper.
	if ids := helper.calls(helperapi.MethodStatus); len(ids) != 1 || ids[0] != "op-00000000cafe" {
		t.Errorf("helper.status op ids = %v, want the request's", ids)
	}
}

func TestStatusWithoutTapPool(t *testing.T) {
	d := newStatusDaemon(filepath.Join(t.TempDir(), "helper.sock"))
	d.tapPool = nil
	sock := serveDaemon(t, d, t.TempDir())
	var res api.StatusResult
	if err := rpc.Call(context.Background(), sock, api.MethodDaemonStatus, nil, &res); err != nil {
		t.Fatal(err)
	}
	if res.TapPool != (api.TapPoolStatus{}) {
		t.Errorf("tap pool = %+v", res.TapPool)
	}
}
