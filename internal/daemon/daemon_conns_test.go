package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/rpc"
)

// TestDaemonLimitsConnections: one uid holding maxConnsPerUID
// connections open gets the next refused at once, as unavailable saying
// why, and is served again when it lets one go.
func TestDaemonLimitsConnections(t *testing.T) {
	d := &Daemon{logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), ownerUID: uint32(os.Getuid())}
	sock := serveDaemon(t, d, t.TempDir())
	var conns []net.Conn
	for i := 0; i < maxConnsPerUID; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := rpc.Call(ctx, sock, api.MethodDaemonPing, nil, nil)
	var remote *rpc.ErrorResponse
	want := fmt.Sprintf("uid %d holds %d connections", os.Getuid(), maxConnsPerUID)
	if !errors.As(err, &remote) || remote.Code != rpc.CodeUnavailable || !strings.Contains(remote.Message, want) {
		t.Fatalf("ping with %d connections open: %v; want unavailable saying %q", maxConnsPerUID, err, want)
	}
	conns[0].Close()
	for i := 0; ; i++ {
		if err = rpc.Call(context.Background(), sock, api.MethodDaemonPing, nil, nil); err == nil {
			break
		}
		if i > 200 {
			t.Fatalf("ping after closing one: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
