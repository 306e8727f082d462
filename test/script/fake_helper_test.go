package script

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/opid"
	"banger/internal/rpc"
)

// fakeHelper stands in for banger-helper, which needs root: `fakehelper
// SOCKET [TAP...]` serves helper.status, tap.create and tap.delete on
// SOCKET, starting with the taps named (as a daemon that died would
// leave them), and prints one line per call — method, tap, op id — so a
// script can see what bangerd asked for. It exits 0 on SIGINT.
func fakeHelper() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fakehelper SOCKET [TAP...]")
		os.Exit(2)
	}
	h := &fakeHelperState{taps: map[string]bool{}, next: 100}
	for _, name := range os.Args[2:] {
		h.taps[name] = true
	}
	ln, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srv := &rpc.Server{Methods: map[string]rpc.Handler{
		helperapi.MethodStatus:    rpc.Typed(h.status),
		helperapi.MethodTapCreate: rpc.Typed(h.createTap),
		helperapi.MethodTapDelete: rpc.Typed(h.deleteTap),
	}}
	if err := srv.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type fakeHelperState struct {
	mu   sync.Mutex
	taps map[string]bool
	next int
}

func (h *fakeHelperState) status(ctx context.Context, _ rpc.NoParams) (helperapi.StatusResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := helperapi.StatusResult{
		Version:         "v9.9.9",
		ProtocolVersion: 1,
		PeerUID:         uint32(os.Getuid()),
		Bridge:          helperapi.BridgeInfo{Name: "br-fc", Address: "172.16.0.1/24", Exists: true, Up: true},
		Taps:            []helperapi.TapInfo{},
		NAT:             []helperapi.NATEntry{},
		MaxTapsPerUID:   64,
	}
	var names []string
	for name := range h.taps {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		res.Taps = append(res.Taps, helperapi.TapInfo{Name: name, UID: uint32(os.Getuid())})
	}
	fmt.Printf("helper.status %s\n", opid.From(ctx))
	return res, nil
}

func (h *fakeHelperState) createTap(ctx context.Context, _ rpc.NoParams) (helperapi.TapCreateResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := fmt.Sprintf("%s%d", helperapi.TapPrefix, h.next)
	h.next++
	h.taps[name] = true
	fmt.Printf("tap.create %s %s\n", name, opid.From(ctx))
	return helperapi.TapCreateResult{Name: name}, nil
}

func (h *fakeHelperState) deleteTap(ctx context.Context, p helperapi.TapDeleteParams) (struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.taps[p.Name] {
		return struct{}{}, fmt.Errorf("tap %s: %w", p.Name, errdefs.ErrNotFound)
	}
	delete(h.taps, p.Name)
	fmt.Printf("tap.delete %s %s\n", p.Name, opid.From(ctx))
	return struct{}{}, nil
}

// waitPool waits until the daemon at $SOCK reports N ready taps.
func waitPool(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitpool N")
	}
	var want int
	if _, err := fmt.Sscan(args[0], &want); err != nil {
		ts.Fatalf("waitpool: %v", err)
	}
	var res api.StatusResult
	for range 500 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := rpc.Call(ctx, ts.Getenv("SOCK"), api.MethodDaemonStatus, nil, &res)
		cancel()
		if err == nil && res.TapPool.Ready == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("the tap pool holds %d taps, not %d: %+v", res.TapPool.Ready, want, res.TapPool)
}

// envsubst SRC DST writes SRC with $VARs replaced by the script's values.
func envSubst(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: envsubst SRC DST")
	}
	data := ts.ReadFile(args[0])
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(os.Expand(data, ts.Getenv)), 0o600))
}
