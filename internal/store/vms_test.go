package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"banger/internal/errdefs"
	"banger/internal/model"
)

func TestVMLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	img := mustCreateImage(t, s, "base")

	vm := newTestVM(t, img.ID, "dev", "172.16.0.2")
	if err := s.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetVM(ctx, vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, got, vm)

	for _, ref := range []string{"dev", vm.ID, vm.ID[:4], vm.ID[:12]} {
		got, err := s.FindVM(ctx, ref)
		if err != nil {
			t.Errorf("FindVM(%q): %v", ref, err)
			continue
		}
		assertEqual(t, got, vm)
	}

	vm.Name = "dev2"
	vm.State = model.VMStateStopped
	vm.Runtime.State = model.VMStateStopped
	vm.Runtime.LastError = "guest panicked"
	vm.Spec.MemoryMiB = 4096
	vm.Stats = model.VMStats{} // empty stats must round-trip too
	vm.UpdatedAt = vm.UpdatedAt.Add(time.Hour)
	if err := s.UpdateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	got, err = s.FindVM(ctx, "dev2")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, got, vm)
	if _, err := s.FindVM(ctx, "dev"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("FindVM(old name) = %v, want ErrNotFound", err)
	}

	if err := s.DeleteVM(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVM(ctx, vm.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetVM after delete = %v, want ErrNotFound", err)
	}
	// Its guest IP is free again.
	again := newTestVM(t, img.ID, "dev3", "172.16.0.2")
	if err := s.CreateVM(ctx, again); err != nil {
		t.Errorf("reusing a deleted vm's guest ip: %v", err)
	}
}

func TestVMRuntimeStateMirrorsState(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	img := mustCreateImage(t, s, "base")

	vm := newTestVM(t, img.ID, "dev", "172.16.0.2")
	vm.State = model.VMStateCreated
	vm.Runtime.State = model.VMStateError // stale; the store must not keep it
	if err := s.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	check := func(want model.VMState) {
		t.Helper()
		got, err := s.GetVM(ctx, vm.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != want || got.Runtime.State != want {
			t.Errorf("state %q, runtime state %q; want both %q", got.State, got.Runtime.State, want)
		}
		var raw string
		if err := s.reader.QueryRowContext(ctx, "SELECT json_extract(runtime, '$.state') FROM vms WHERE id = ?", vm.ID).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if raw != string(want) {
			t.Errorf("stored runtime state %q, want %q", raw, want)
		}
	}
	check(model.VMStateCreated)

	vm.State = model.VMStateRunning
	if err := s.UpdateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	check(model.VMStateRunning)
}

func TestVMErrors(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	img := mustCreateImage(t, s, "base")
	dev := newTestVM(t, img.ID, "dev", "172.16.0.2")
	ci := newTestVM(t, img.ID, "ci", "172.16.0.3")
	for _, vm := range []model.VMRecord{dev, ci} {
		if err := s.CreateVM(ctx, vm); err != nil {
			t.Fatal(err)
		}
	}

	with := func(name string, edit func(*model.VMRecord)) model.VMRecord {
		vm := newTestVM(t, img.ID, name, "")
		edit(&vm)
		return vm
	}
	sameName := with("dev", func(*model.VMRecord) {})
	sameIP := with("web", func(vm *model.VMRecord) { vm.Runtime.GuestIP = "172.16.0.2" })
	sameID := with("fresh", func(vm *model.VMRecord) { vm.ID = dev.ID })
	unknownImage := with("orphan", func(vm *model.VMRecord) { vm.ImageID = strings.Repeat("0", 64) })
	badState := with("odd", func(vm *model.VMRecord) { vm.State = "paused" })
	noID := with("x", func(vm *model.VMRecord) { vm.ID = "" })
	noName := with("", func(*model.VMRecord) {})
	noImage := with("x", func(vm *model.VMRecord) { vm.ImageID = "" })
	badStats := with("x", func(vm *model.VMRecord) { vm.Stats.MetricsRaw = map[string]any{"c": make(chan int)} })
	missing := with("ghost", func(*model.VMRecord) {})
	ciRenamed := ci
	ciRenamed.Name = "dev"
	ciReIP := ci
	ciReIP.Runtime.GuestIP = "172.16.0.2"
	ciNoImage := ci
	ciNoImage.ImageID = strings.Repeat("0", 64)

	for _, tc := range []struct {
		name    string
		op      func() error
		want    error
		message string // a substring the error must contain
	}{
		{"create duplicate name", func() error { return s.CreateVM(ctx, sameName) }, errdefs.ErrConflict, `vm name "dev" is already taken`},
		{"create duplicate guest ip", func() error { return s.CreateVM(ctx, sameIP) }, errdefs.ErrConflict, `guest ip 172.16.0.2 is already assigned to vm "dev"`},
		{"create duplicate id", func() error { return s.CreateVM(ctx, sameID) }, errdefs.ErrConflict, dev.ID},
		{"create unknown image", func() error { return s.CreateVM(ctx, unknownImage) }, errdefs.ErrNotFound, unknownImage.ImageID},
		{"create invalid state", func() error { return s.CreateVM(ctx, badState) }, errdefs.ErrInvalidArgument, `invalid state "paused"`},
		{"create empty id", func() error { return s.CreateVM(ctx, noID) }, errdefs.ErrInvalidArgument, "empty id"},
		{"create empty name", func() error { return s.CreateVM(ctx, noName) }, errdefs.ErrInvalidArgument, "empty name"},
		{"create empty image", func() error { return s.CreateVM(ctx, noImage) }, errdefs.ErrInvalidArgument, "empty image id"},
		{"create unencodable stats", func() error { return s.CreateVM(ctx, badStats) }, errdefs.ErrInvalidArgument, "encode stats"},
		{"update to taken name", func() error { return s.UpdateVM(ctx, ciRenamed) }, errdefs.ErrConflict, `vm name "dev" is already taken`},
		{"update to taken guest ip", func() error { return s.UpdateVM(ctx, ciReIP) }, errdefs.ErrConflict, "172.16.0.2"},
		{"update to unknown image", func() error { return s.UpdateVM(ctx, ciNoImage) }, errdefs.ErrNotFound, ciNoImage.ImageID},
		{"update missing", func() error { return s.UpdateVM(ctx, missing) }, errdefs.ErrNotFound, missing.ID},
		{"delete missing", func() error { return s.DeleteVM(ctx, missing.ID) }, errdefs.ErrNotFound, missing.ID},
		{"delete empty id", func() error { return s.DeleteVM(ctx, " ") }, errdefs.ErrInvalidArgument, "empty vm id"},
		{"get missing", func() error { _, err := s.GetVM(ctx, missing.ID); return err }, errdefs.ErrNotFound, missing.ID},
		{"get empty id", func() error { _, err := s.GetVM(ctx, ""); return err }, errdefs.ErrInvalidArgument, "empty vm id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not mention %q", err, tc.message)
			}
		})
	}

	// Nothing above may have changed the stored VMs.
	list, err := s.ListVMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, list, []model.VMRecord{ci, dev})
}

func TestVMsWithoutGuestIPDoNotConflict(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	img := mustCreateImage(t, s, "base")
	for _, name := range []string{"a", "b", "c"} {
		if err := s.CreateVM(ctx, newTestVM(t, img.ID, name, "")); err != nil {
			t.Errorf("CreateVM(%s) with no guest ip: %v", name, err)
		}
	}
}

func TestFindVMRef(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	img := mustCreateImage(t, s, "base")

	// Fixed ids so prefixes collide on purpose: abcd1… and abcd2… share
	// "abcd"; the VM named "abcd2" looks like a prefix of the other one's
	// id, and a name must win over a prefix.
	vms := map[string]model.VMRecord{}
	for i, tc := range []struct{ name, id string }{
		{"one", "abcd1" + strings.Repeat("1", 59)},
		{"two", "abcd2" + strings.Repeat("2", 59)},
		{"abcd2", "ffff0" + strings.Repeat("3", 59)},
	} {
		vm := newTestVM(t, img.ID, tc.name, "172.16.0."+string(rune('2'+i)))
		vm.ID = tc.id
		if err := s.CreateVM(ctx, vm); err != nil {
			t.Fatal(err)
		}
		vms[tc.name] = vm
	}

	for _, tc := range []struct {
		ref     string
		want    string // vm name, or "" for an error
		wantErr error
	}{
		{"one", "one", nil},
		{vms["two"].ID, "two", nil},
		{"abcd1", "one", nil},
		{"ABCD1", "one", nil},
		{"abcd2", "abcd2", nil},                  // the name, not two's id prefix
		{"abcd22", "two", nil},                   // a longer prefix is not a name
		{"ffff", "abcd2", nil},                   // exactly four hex digits
		{"abcd", "", errdefs.ErrInvalidArgument}, // ambiguous prefix
		{"abc", "", errdefs.ErrNotFound},         // too short to be a prefix
		{"ffff0z", "", errdefs.ErrNotFound},      // not hex
		{"9999", "", errdefs.ErrNotFound},
		{"", "", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := s.FindVM(ctx, tc.ref)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("FindVM(%q) = %s, %v; want %v", tc.ref, got.Name, err, tc.wantErr)
				}
				if tc.ref != "" && !strings.Contains(err.Error(), tc.ref) {
					t.Errorf("error %q does not name %q", err, tc.ref)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindVM(%q): %v", tc.ref, err)
			}
			if got.Name != tc.want {
				t.Errorf("FindVM(%q) = %s, want %s", tc.ref, got.Name, tc.want)
			}
		})
	}
}

func TestListVMsOrder(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	img := mustCreateImage(t, s, "base")

	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	// Inserted out of order. "late-frac" is half a second after "b" and
	// "a": with trimmed RFC 3339 fractions ("…05.5Z" < "…05Z" as text) it
	// would sort first.
	for i, tc := range []struct {
		name    string
		created time.Time
	}{
		{"late-frac", base.Add(500 * time.Millisecond)},
		{"b", base},
		{"latest", base.Add(time.Hour)},
		{"a", base},
	} {
		vm := newTestVM(t, img.ID, tc.name, "172.16.1."+string(rune('2'+i)))
		vm.CreatedAt = tc.created
		if err := s.CreateVM(ctx, vm); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListVMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, vm := range list {
		names = append(names, vm.Name)
	}
	if got, want := strings.Join(names, " "), "a b late-frac latest"; got != want {
		t.Errorf("ListVMs order = %s, want %s", got, want)
	}
}

func TestVMsUsingImage(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	base := mustCreateImage(t, s, "base")
	other := mustCreateImage(t, s, "other")
	unused := mustCreateImage(t, s, "unused")

	b1 := newTestVM(t, base.ID, "b1", "172.16.0.2")
	b2 := newTestVM(t, base.ID, "b2", "172.16.0.3")
	o1 := newTestVM(t, other.ID, "o1", "172.16.0.4")
	for _, vm := range []model.VMRecord{b2, o1, b1} {
		if err := s.CreateVM(ctx, vm); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		image string
		want  []model.VMRecord
	}{
		{base.ID, []model.VMRecord{b1, b2}},
		{other.ID, []model.VMRecord{o1}},
		{unused.ID, []model.VMRecord{}},
		{"no-such-image", []model.VMRecord{}},
	} {
		got, err := s.VMsUsingImage(ctx, tc.image)
		if err != nil {
			t.Fatalf("VMsUsingImage(%s): %v", tc.image, err)
		}
		assertEqual(t, got, tc.want)
	}
}
