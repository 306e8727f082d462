package daemon

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/store"
	"banger/internal/tappool"
)

// lockedBuffer is a log the daemon's goroutines and the test share.
type lockedBuffer struct {
	mu    sync.Mutex
	lines strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lines.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lines.String()
}

// newPoolDaemon is a Daemon with a store holding one VM that uses
// vmTap, and a tap pool of size 2 on helper.
func newPoolDaemon(t *testing.T, helper *fakeHelper, vmTap string) (*Daemon, *lockedBuffer) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "banger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := model.Now()
	img := model.Image{ID: strings.Repeat("a", 64), Name: "base", RootfsPath: "/i/rootfs.ext4", KernelPath: "/i/vmlinux", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	vm := model.VMRecord{
		ID: strings.Repeat("b", 64), Name: "dev", ImageID: img.ID, State: model.VMStateRunning,
		CreatedAt: now, UpdatedAt: now, LastTouchedAt: now,
		Runtime: model.VMRuntime{GuestIP: "172.16.0.2", TapDevice: vmTap},
	}
	if err := st.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	logger, _, err := newDaemonLogger(logs, "debug")
	if err != nil {
		t.Fatal(err)
	}
	client := helperapi.Client{Socket: helper.socket}
	return &Daemon{
		cfg:     model.DaemonConfig{TapPoolSize: 2, HelperSocket: helper.socket},
		logger:  logger,
		store:   st,
		helper:  client,
		tapPool: tappool.New(client, 2, logger),
	}, logs
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTapPoolAdoptsFreeTaps: taps left by an earlier daemon are adopted
// up to the pool's size and the rest deleted; a VM's tap is left alone,
// and at shutdown the pool releases its taps but not the VM's.
func TestTapPoolAdoptsFreeTaps(t *testing.T) {
	helper := newFakeHelper(t, "bgtap0", "bgtap1", "bgtap2", "bgtap3")
	helper.serve(t)
	d, logs := newPoolDaemon(t, helper, "bgtap1")

	stop := d.startTapPool(context.Background())
	waitUntil(t, "adoption", func() bool { return hasRecord(t, logs, "tap_pool.adopt", "operation completed") })
	if live := helper.live(); !slices.Equal(live, []string{"bgtap0", "bgtap1", "bgtap2"}) {
		t.Errorf("helper's taps after adoption = %v, want bgtap0 and bgtap2 adopted, bgtap3 deleted, the VM's bgtap1 kept", live)
	}
	if st := d.tapPool.Stats(); st.Ready != 2 {
		t.Errorf("pool = %+v", st)
	}
	if creates := helper.calls(helperapi.MethodTapCreate); len(creates) != 0 {
		t.Errorf("the pool created taps although adoption filled it: %v", creates)
	}
	// Adoption's helper calls carry its operation's op id.
	adoptID := recordOpID(t, logs, "tap_pool.adopt")
	statusIDs, deleteIDs := helper.calls(helperapi.MethodStatus), helper.calls(helperapi.MethodTapDelete)
	if len(statusIDs) != 1 || statusIDs[0] != adoptID || len(deleteIDs) != 1 || deleteIDs[0] != adoptID {
		t.Errorf("adoption %s: helper saw status under %v, delete under %v", adoptID, statusIDs, deleteIDs)
	}

	// A Take makes the loop refill under an op id of its own, which the
	// helper sees and the daemon logs.
	name, hit, err := d.tapPool.Take(context.Background())
	if err != nil || !hit || name != "bgtap0" {
		t.Fatalf("Take = %s, %v, %v", name, hit, err)
	}
	waitUntil(t, "a refill", func() bool { return len(helper.calls(helperapi.MethodTapCreate)) == 1 })
	refillID := helper.calls(helperapi.MethodTapCreate)[0]
	if !opIDRE.MatchString(refillID) {
		t.Errorf("refill ran under op id %q", refillID)
	}
	waitUntil(t, "the refill's log record", func() bool {
		return strings.Contains(logs.String(), `"msg":"tap pool refilled","op_id":"`+refillID+`"`)
	})

	stop()
	// Left: the VM's tap and the one handed out; the ready ones are gone.
	if live := helper.live(); !slices.Equal(live, []string{"bgtap0", "bgtap1"}) {
		t.Errorf("helper's taps after shutdown = %v", live)
	}
	if !hasRecord(t, logs, "tap_pool.close", "operation completed") {
		t.Errorf("no completed tap_pool.close operation in the log:\n%s", logs.String())
	}
}

// TestTapPoolWaitsForHelper: the daemon starts with no helper; once the
// helper comes up, the pool fills and leftovers are dealt with.
func TestTapPoolWaitsForHelper(t *testing.T) {
	helper := newFakeHelper(t, "bgtap5", "bgtap6", "bgtap7")
	d, logs := newPoolDaemon(t, helper, "bgtap6")
	stop := d.startTapPool(context.Background())
	defer stop()

	waitUntil(t, "a refill failure", func() bool { return d.tapPool.Stats().LastError != "" })
	if got := d.tapPool.Stats().LastError; !strings.Contains(got, "banger-helper is unavailable at "+helper.socket) {
		t.Errorf("LastError = %q", got)
	}
	if !strings.Contains(logs.String(), `"stage":"waiting for banger-helper"`) {
		t.Errorf("the log does not say adoption waits for the helper:\n%s", logs.String())
	}

	helper.serve(t)
	waitUntil(t, "adoption", func() bool { return hasRecord(t, logs, "tap_pool.adopt", "operation completed") })
	waitUntil(t, "a full pool", func() bool { return d.tapPool.Stats().Ready == 2 })
	// However refill and adoption interleaved, the helper ends up with
	// the VM's tap and the pool's two.
	waitUntil(t, "leftovers deleted", func() bool { return len(helper.live()) == 3 })
	if live := helper.live(); !slices.Contains(live, "bgtap6") {
		t.Errorf("the VM's tap is gone: %v", live)
	}
	if st := d.tapPool.Stats(); st.LastError != "" {
		t.Errorf("pool = %+v", st)
	}
}

// hasRecord reports whether the log has a record of the operation with
// this message, stamped with a minted op id.
func hasRecord(t *testing.T, logs *lockedBuffer, operation, msg string) bool {
	t.Helper()
	for _, rec := range records(t, bytes.NewBufferString(logs.String())) {
		id, _ := rec["op_id"].(string)
		if rec["operation"] == operation && rec["msg"] == msg && opIDRE.MatchString(id) {
			return true
		}
	}
	return false
}

// recordOpID returns the op id the log's records of operation carry.
func recordOpID(t *testing.T, logs *lockedBuffer, operation string) string {
	t.Helper()
	for _, rec := range records(t, bytes.NewBufferString(logs.String())) {
		if rec["operation"] == operation {
			id, _ := rec["op_id"].(string)
			return id
		}
	}
	t.Fatalf("no %s record in the log:\n%s", operation, logs.String())
	return ""
}
