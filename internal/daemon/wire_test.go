package daemon

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/internal/config"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/paths"
	"banger/internal/store"
)

// newWiredDaemon is bangerd as Run builds it, on a fresh layout, with a
// tap pool of 2 on the helper at helperSocket and a store holding one
// running VM that uses vmTap.
func newWiredDaemon(t testing.TB, helperSocket, vmTap string) (*Daemon, *bytes.Buffer) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	layout := paths.Layout{
		StateDir: filepath.Join(dir, "state"), DataDir: filepath.Join(dir, "data"),
		ImagesDir: filepath.Join(dir, "data", "images"), VMsDir: filepath.Join(dir, "data", "vms"),
		CacheDir: filepath.Join(dir, "cache"), DBPath: filepath.Join(dir, "state", "banger.db"),
		ConfigFile: filepath.Join(dir, "config.toml"), RuntimeDir: filepath.Join(dir, "run"),
	}
	if err := layout.EnsureStateDirs(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, layout.DBPath)
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
		ID: strings.Repeat("b", 64), Name: "dev", ImageID: img.ID, State: model.VMStateStopped,
		CreatedAt: now, UpdatedAt: now, LastTouchedAt: now,
		Runtime: model.VMRuntime{GuestIP: "172.16.0.2", TapDevice: vmTap},
	}
	if err := st.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	logger, _, _ := oplog.NewLogger(logs, "info")
	cfg := config.Defaults(layout, dir)
	cfg.TapPoolSize, cfg.HelperSocket, cfg.VMM = 2, helperSocket, model.VMMAuto
	d := build(ctx, Options{Layout: layout, Config: cfg, Logger: logger, LogLevel: "info"}, st)
	t.Cleanup(d.vms.Close)
	return d, logs
}

// TestTapPoolAdoptsThroughHelper: the wiring's lister asks the helper
// for the user's taps and the VM service for its VMs': a tap a VM record
// names is never adopted; the others fill the pool, the surplus is
// deleted, and stop releases the pool's taps.
func TestTapPoolAdoptsThroughHelper(t *testing.T) {
	helper := newFakeHelper(t, "bgtap0", "bgtap1", "bgtap2", "bgtap3")
	helper.serve(t)
	d, _ := newWiredDaemon(t, helper.socket, "bgtap1")

	free, err := d.freeTaps(context.Background())
	if err != nil || !slices.Equal(free, []string{"bgtap0", "bgtap2", "bgtap3"}) {
		t.Fatalf("freeTaps = %v, %v; want every tap but the VM's", free, err)
	}
	stop := d.tapPool.Run(context.Background(), d.freeTaps)
	deadline := time.Now().Add(10 * time.Second)
	for len(helper.live()) != 3 || d.tapPool.Stats().Ready != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("taps %v, pool %+v: adoption did not settle", helper.live(), d.tapPool.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if live := helper.live(); !slices.Contains(live, "bgtap1") {
		t.Errorf("the VM's tap is gone: %v", live)
	}
	stop()
	if live := helper.live(); !slices.Equal(live, []string{"bgtap1"}) {
		t.Errorf("taps after stop = %v, want only the VM's", live)
	}
}

// TestRecoverRuns: a fresh daemon's recovery runs the operations' and
// the VMs' parts and logs both.
func TestRecoverRuns(t *testing.T) {
	d, logs := newWiredDaemon(t, filepath.Join(t.TempDir(), "helper.sock"), "bgtap1")
	d.recover(context.Background())
	for _, op := range []string{`"operation":"daemon.recover"`, `"operation":"vm.recover"`} {
		if !strings.Contains(logs.String(), op) {
			t.Errorf("no %s in the log:\n%s", op, logs.String())
		}
	}
}
