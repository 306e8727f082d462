package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/model"
)

// openTestStore opens a fresh store under t.TempDir and closes it when the
// test ends.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state", "banger.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// testTime is a fixed, non-UTC time with nanoseconds, so round trips
// exercise both the zone conversion and the fraction.
var testTime = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

func newTestImage(t *testing.T, name string) model.Image {
	t.Helper()
	id, err := model.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return model.Image{
		ID:                            id,
		Name:                          name,
		Managed:                       true,
		ArtifactDir:                   "/var/lib/banger/images/" + name,
		RootfsPath:                    "/var/lib/banger/images/" + name + "/rootfs.ext4",
		WorkSeedPath:                  "/var/lib/banger/images/" + name + "/work-seed.ext4",
		KernelPath:                    "/var/lib/banger/images/" + name + "/vmlinux",
		InitrdPath:                    "/var/lib/banger/images/" + name + "/initrd.img",
		ModulesDir:                    "/var/lib/banger/images/" + name + "/modules",
		BuildSize:                     "4G",
		SeededSSHPublicKeyFingerprint: "SHA256:abc",
		CreatedAt:                     testTime.UTC(),
		UpdatedAt:                     testTime.Add(time.Minute).UTC(),
	}
}

func newTestVM(t *testing.T, imageID, name, guestIP string) model.VMRecord {
	t.Helper()
	id, err := model.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return model.VMRecord{
		ID:            id,
		Name:          name,
		ImageID:       imageID,
		State:         model.VMStateRunning,
		CreatedAt:     testTime.UTC(),
		UpdatedAt:     testTime.Add(time.Second).UTC(),
		LastTouchedAt: testTime.Add(2 * time.Second).UTC(),
		Spec: model.VMSpec{
			VCPUCount:             2,
			MemoryMiB:             2048,
			SystemOverlaySizeByte: 8 << 30,
			WorkDiskSizeBytes:     4 << 30,
			NATEnabled:            true,
		},
		Runtime: model.VMRuntime{
			State:         model.VMStateRunning,
			GuestIP:       guestIP,
			APISockPath:   "/run/banger/" + name + "/api.sock",
			VSockPath:     "/run/banger/" + name + "/vsock",
			VSockCID:      42,
			LogPath:       "/var/lib/banger/vms/" + name + "/vm.log",
			MetricsPath:   "/var/lib/banger/vms/" + name + "/metrics",
			DNSName:       name + ".vm",
			VMDir:         "/var/lib/banger/vms/" + name,
			TapDevice:     "tap3",
			BaseLoop:      "/dev/loop4",
			COWLoop:       "/dev/loop5",
			DMName:        "banger-" + name,
			DMDev:         "/dev/mapper/banger-" + name,
			SystemOverlay: "/var/lib/banger/vms/" + name + "/overlay.ext4",
			WorkDiskPath:  "/var/lib/banger/vms/" + name + "/work.ext4",
			LastError:     "none yet",
		},
		Stats: model.VMStats{
			CollectedAt:        testTime.Add(3 * time.Second).UTC(),
			CPUPercent:         12.5,
			RSSBytes:           1 << 20,
			VSZBytes:           2 << 20,
			SystemOverlayBytes: 3 << 20,
			WorkDiskBytes:      4 << 20,
			// JSON numbers come back as float64, so the fixture uses them.
			MetricsRaw: map[string]any{
				"block": map[string]any{"read_bytes": float64(1024), "devices": []any{"vda", "vdb"}},
				"net":   map[string]any{"tx_packets": float64(7)},
				"ok":    true,
				"name":  "fc",
			},
		},
	}
}

// mustCreateImage stores a new image named name and returns it.
func mustCreateImage(t *testing.T, s *Store, name string) model.Image {
	t.Helper()
	img := newTestImage(t, name)
	if err := s.CreateImage(context.Background(), img); err != nil {
		t.Fatalf("CreateImage(%s): %v", name, err)
	}
	return img
}

func TestOpenCreatesPrivateFileAndDir(t *testing.T) {
	// The directory name needs URI escaping: an unescaped '?' or '#' would
	// cut the path short and open a different file.
	dir := filepath.Join(t.TempDir(), "odd ?#% dir", "state")
	path := filepath.Join(dir, "banger.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mustCreateImage(t, s, "base")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{path, 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tc.want {
			t.Errorf("mode of %s = %v, want %v", tc.path, got, tc.want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "banger.db") {
			t.Errorf("unexpected file %q next to the database", e.Name())
		}
	}
}

func TestPragmas(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		pool   string
		db     *sql.DB
		pragma string
		want   string
	}{
		{"writer", s.writer, "journal_mode", "wal"},
		{"reader", s.reader, "journal_mode", "wal"},
		{"writer", s.writer, "foreign_keys", "1"},
		{"reader", s.reader, "foreign_keys", "1"},
		{"writer", s.writer, "busy_timeout", "5000"},
		{"reader", s.reader, "busy_timeout", "5000"},
		{"writer", s.writer, "synchronous", "1"}, // NORMAL
		{"writer", s.writer, "query_only", "0"},
		{"reader", s.reader, "query_only", "1"},
		{"writer", s.writer, "user_version", fmt.Sprint(len(migrations))},
	} {
		t.Run(tc.pool+"/"+tc.pragma, func(t *testing.T) {
			var got string
			if err := tc.db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
			}
		})
	}
}

func TestWALFileExistsAfterWrite(t *testing.T) {
	s := openTestStore(t)
	mustCreateImage(t, s, "base")
	if _, err := os.Stat(s.Path() + "-wal"); err != nil {
		t.Errorf("no write-ahead log next to the database: %v", err)
	}
}

func TestReadPoolCannotWrite(t *testing.T) {
	s := openTestStore(t)
	_, err := s.reader.ExecContext(context.Background(),
		"INSERT INTO images (id, name, rootfs_path, kernel_path, created_at, updated_at) VALUES ('a', 'b', '', '', '', '')")
	if err == nil {
		t.Fatal("insert through the read pool succeeded")
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "banger.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	img := mustCreateImage(t, s, "base")
	vm := newTestVM(t, img.ID, "dev", "172.16.0.2")
	if err := s.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	gotImg, err := s.GetImage(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, gotImg, img)
	gotVM, err := s.GetVM(ctx, vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, gotVM, vm)
}

func TestMigrateEmptyExistingFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "banger.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open on a 0-byte file: %v", err)
	}
	defer s.Close()
	var version int
	if err := s.reader.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != len(migrations) {
		t.Errorf("user_version = %d, want %d", version, len(migrations))
	}
	for _, table := range []string{"images", "vms"} {
		var n int
		err := s.reader.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", table).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("table %s: count %d, err %v", table, n, err)
		}
	}
	if list, err := s.ListVMs(ctx); err != nil || list == nil || len(list) != 0 {
		t.Errorf("ListVMs on a new database = %#v, %v; want an empty non-nil list", list, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "banger.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	newer := len(migrations) + 1
	if _, err := s.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", newer)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	_, err = Open(ctx, path)
	var tooNew *SchemaTooNewError
	if !errors.As(err, &tooNew) {
		t.Fatalf("Open = %v, want a *SchemaTooNewError", err)
	}
	want := fmt.Sprintf("database %s has schema version %d, newer than this banger understands (%d); upgrade banger",
		path, newer, len(migrations))
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

func TestConcurrentWriters(t *testing.T) {
	const (
		workers = 8
		perWork = 25
	)
	ctx := context.Background()

	// Two stores on one file stand in for two processes: across them,
	// busy_timeout and BEGIN IMMEDIATE are what keep "database is locked"
	// away; within one, the single writer connection does.
	path := filepath.Join(t.TempDir(), "banger.db")
	stores := make([]*Store, 2)
	for i := range stores {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	img := mustCreateImage(t, stores[0], "base")

	// Fixtures are built up front: t.Fatal must not run on the workers.
	fixtures := make([][]model.VMRecord, workers)
	for w := range fixtures {
		for i := range perWork {
			fixtures[w] = append(fixtures[w],
				newTestVM(t, img.ID, fmt.Sprintf("vm-%d-%d", w, i), fmt.Sprintf("10.%d.%d.2", w, i)))
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4*workers*perWork)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i, vm := range fixtures[w] {
				if err := s.CreateVM(ctx, vm); err != nil {
					errs <- fmt.Errorf("create %s: %w", vm.Name, err)
					continue
				}
				vm.State = model.VMStateStopped
				if err := s.UpdateVM(ctx, vm); err != nil {
					errs <- fmt.Errorf("update %s: %w", vm.Name, err)
				}
				if _, err := s.FindVM(ctx, vm.Name); err != nil {
					errs <- fmt.Errorf("find %s: %w", vm.Name, err)
				}
				if i%5 == 0 {
					if err := s.DeleteVM(ctx, vm.ID); err != nil {
						errs <- fmt.Errorf("delete %s: %w", vm.Name, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	vms, err := stores[1].ListVMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := workers * (perWork - perWork/5); len(vms) != want {
		t.Errorf("ListVMs has %d vms, want %d", len(vms), want)
	}
	for _, vm := range vms {
		if vm.State != model.VMStateStopped || vm.Runtime.State != model.VMStateStopped {
			t.Errorf("vm %s: state %q, runtime state %q; want stopped", vm.Name, vm.State, vm.Runtime.State)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s := openTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.CreateImage(ctx, newTestImage(t, "base")); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateImage with a cancelled context = %v, want context.Canceled", err)
	}
	// The writer connection must still be usable afterwards.
	mustCreateImage(t, s, "base")
}

// assertEqual fails the test when got and want differ, showing both as
// JSON, which is easier to diff by eye than %#v of nested structs.
func assertEqual[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("got:\n%s\nwant:\n%s", g, w)
	}
}
