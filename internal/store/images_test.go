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

func TestImageLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)

	// Created out of name order, so ListImages has to sort.
	zeta := mustCreateImage(t, s, "zeta")
	alpha := newTestImage(t, "alpha")
	alpha.Managed = false
	alpha.ArtifactDir, alpha.WorkSeedPath, alpha.InitrdPath = "", "", ""
	alpha.CreatedAt = testTime // not UTC: must come back as the same instant, in UTC
	if err := s.CreateImage(ctx, alpha); err != nil {
		t.Fatal(err)
	}
	alpha.CreatedAt = testTime.UTC()

	got, err := s.GetImage(ctx, alpha.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, got, alpha)
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}

	for _, ref := range []string{"alpha", alpha.ID, alpha.ID[:4], strings.ToUpper(alpha.ID[:10])} {
		got, err := s.FindImage(ctx, ref)
		if err != nil {
			t.Errorf("FindImage(%q): %v", ref, err)
			continue
		}
		if got.ID != alpha.ID {
			t.Errorf("FindImage(%q) = %s, want %s", ref, got.Name, alpha.Name)
		}
	}

	list, err := s.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, list, []model.Image{alpha, zeta})

	zeta.Name = "omega"
	zeta.KernelPath = "/boot/vmlinux-6.1"
	zeta.UpdatedAt = zeta.UpdatedAt.Add(time.Hour)
	if err := s.UpdateImage(ctx, zeta); err != nil {
		t.Fatal(err)
	}
	got, err = s.FindImage(ctx, "omega")
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, got, zeta)

	if err := s.DeleteImage(ctx, zeta.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetImage(ctx, zeta.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetImage after delete = %v, want ErrNotFound", err)
	}
	list, err = s.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, list, []model.Image{alpha})
}

func TestImageErrors(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	base := mustCreateImage(t, s, "base")
	other := mustCreateImage(t, s, "other")

	missing := newTestImage(t, "missing")
	sameName := newTestImage(t, "base")
	sameID := newTestImage(t, "fresh")
	sameID.ID = base.ID
	renamed := other
	renamed.Name = "base"
	noID := newTestImage(t, "x")
	noID.ID = ""
	noName := newTestImage(t, "x")
	noName.Name = " "

	for _, tc := range []struct {
		name    string
		op      func() error
		want    error
		message string // a substring the error must contain
	}{
		{"create duplicate name", func() error { return s.CreateImage(ctx, sameName) }, errdefs.ErrConflict, `image name "base" is already taken`},
		{"create duplicate id", func() error { return s.CreateImage(ctx, sameID) }, errdefs.ErrConflict, base.ID},
		{"update to taken name", func() error { return s.UpdateImage(ctx, renamed) }, errdefs.ErrConflict, `image name "base" is already taken`},
		{"create empty id", func() error { return s.CreateImage(ctx, noID) }, errdefs.ErrInvalidArgument, "empty id"},
		{"create blank name", func() error { return s.CreateImage(ctx, noName) }, errdefs.ErrInvalidArgument, "empty name"},
		{"update missing", func() error { return s.UpdateImage(ctx, missing) }, errdefs.ErrNotFound, missing.ID},
		{"delete missing", func() error { return s.DeleteImage(ctx, missing.ID) }, errdefs.ErrNotFound, missing.ID},
		{"delete empty id", func() error { return s.DeleteImage(ctx, "") }, errdefs.ErrInvalidArgument, "empty image id"},
		{"get missing", func() error { _, err := s.GetImage(ctx, missing.ID); return err }, errdefs.ErrNotFound, missing.ID},
		{"find missing", func() error { _, err := s.FindImage(ctx, "nope"); return err }, errdefs.ErrNotFound, `image "nope"`},
		{"find empty", func() error { _, err := s.FindImage(ctx, ""); return err }, errdefs.ErrInvalidArgument, "empty image reference"},
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

	// Nothing above may have changed the stored images.
	list, err := s.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, list, []model.Image{base, other})
}

func TestDeleteImageInUse(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	img := mustCreateImage(t, s, "base")
	vm := newTestVM(t, img.ID, "dev", "172.16.0.2")
	if err := s.CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}

	err := s.DeleteImage(ctx, img.ID)
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("DeleteImage of an image in use = %v, want ErrConflict", err)
	}
	if !strings.Contains(err.Error(), "dev") {
		t.Errorf("error %q does not name the vm using the image", err)
	}
	if _, err := s.GetImage(ctx, img.ID); err != nil {
		t.Fatalf("image gone after refused delete: %v", err)
	}

	if err := s.DeleteVM(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImage(ctx, img.ID); err != nil {
		t.Errorf("DeleteImage once unused: %v", err)
	}
}
