package daemon

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"banger/internal/errdefs"
	"banger/internal/helperapi"
	"banger/internal/opid"
	"banger/internal/rpc"
)

// fakeHelper serves the part of banger-helper the daemon uses so far —
// helper.status, tap.create, tap.delete — on a socket, with taps kept in
// memory. It records the op id of every call.
type fakeHelper struct {
	socket string

	mu    sync.Mutex
	taps  map[string]bool
	next  int
	opIDs map[string][]string // method → op ids, in call order
}

// newFakeHelper returns a helper that is not serving yet, holding the
// taps named.
func newFakeHelper(t *testing.T, taps ...string) *fakeHelper {
	h := &fakeHelper{
		socket: filepath.Join(t.TempDir(), "helper.sock"),
		taps:   make(map[string]bool),
		next:   100,
		opIDs:  make(map[string][]string),
	}
	for _, name := range taps {
		h.taps[name] = true
	}
	return h
}

// serve starts answering on h.socket until the test ends.
func (h *fakeHelper) serve(t *testing.T) {
	ln, err := net.Listen("unix", h.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rpc.Server{Methods: map[string]rpc.Handler{
		helperapi.MethodStatus:    rpc.Typed(h.status),
		helperapi.MethodTapCreate: rpc.Typed(h.createTap),
		helperapi.MethodTapDelete: rpc.Typed(h.deleteTap),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (h *fakeHelper) record(ctx context.Context, method string) {
	h.opIDs[method] = append(h.opIDs[method], opid.From(ctx))
}

func (h *fakeHelper) status(ctx context.Context, _ rpc.NoParams) (helperapi.StatusResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record(ctx, helperapi.MethodStatus)
	res := helperapi.StatusResult{
		Version:         "v9.8.7",
		ProtocolVersion: 1,
		Bridge:          helperapi.BridgeInfo{Name: "br-fc", Address: "172.16.0.1/24", Exists: true, Up: true},
		Taps:            []helperapi.TapInfo{},
		NAT:             []helperapi.NATEntry{},
		MaxTapsPerUID:   64,
	}
	for _, name := range h.liveLocked() {
		res.Taps = append(res.Taps, helperapi.TapInfo{Name: name})
	}
	return res, nil
}

func (h *fakeHelper) createTap(ctx context.Context, _ rpc.NoParams) (helperapi.TapCreateResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record(ctx, helperapi.MethodTapCreate)
	name := fmt.Sprintf("%s%d", helperapi.TapPrefix, h.next)
	h.next++
	h.taps[name] = true
	return helperapi.TapCreateResult{Name: name}, nil
}

func (h *fakeHelper) deleteTap(ctx context.Context, p helperapi.TapDeleteParams) (struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record(ctx, helperapi.MethodTapDelete)
	if !h.taps[p.Name] {
		return struct{}{}, fmt.Errorf("tap %s: %w", p.Name, errdefs.ErrNotFound)
	}
	delete(h.taps, p.Name)
	return struct{}{}, nil
}

func (h *fakeHelper) live() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.liveLocked()
}

func (h *fakeHelper) liveLocked() []string {
	var names []string
	for name := range h.taps {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (h *fakeHelper) calls(method string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.opIDs[method])
}
