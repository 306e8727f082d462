package images

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/imagebuild"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/paths"
	"banger/internal/store"
)

// newImageService is an image service with a real store, images dir and operation
// registry, but no socket.
func newImageService(t *testing.T) *Service {
	t.Helper()
	dir := t.TempDir()
	layout := paths.Layout{StateDir: dir, ImagesDir: filepath.Join(dir, "images"), DBPath: filepath.Join(dir, "b.db")}
	os.MkdirAll(layout.ImagesDir, 0o700)
	st, err := store.Open(context.Background(), layout.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	guestBin := filepath.Join(dir, "banger-guest")
	os.WriteFile(guestBin, []byte("#!/bin/true\n"), 0o755)
	logger := slog.New(slog.DiscardHandler)
	return New(Deps{
		Layout: layout,
		Config: model.DaemonConfig{SSHKeyPath: filepath.Join(dir, "ssh", "id_ed25519"), DefaultImageName: "default"},
		Logger: logger,
		Store:  st,
		Ops:    operation.NewRegistry(st, logger),
		Builder: &imagebuild.Builder{ImagesDir: layout.ImagesDir, CacheDir: filepath.Join(dir, "cache"),
			Guest: imagebuild.Guest{Binary: guestBin}},
	})
}

// writeELFKernel writes the smallest file Inspect takes for an x86-64
// vmlinux: an ELF64 header of an executable for EM_X86_64.
func writeELFKernel(t *testing.T, path string) {
	t.Helper()
	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	binary.LittleEndian.PutUint16(h[16:], 2)    // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 0x3e) // EM_X86_64
	binary.LittleEndian.PutUint32(h[20:], 1)    // EV_CURRENT
	binary.LittleEndian.PutUint16(h[52:], 64)   // e_ehsize
	binary.LittleEndian.PutUint16(h[54:], 56)   // e_phentsize
	binary.LittleEndian.PutUint16(h[58:], 64)   // e_shentsize
	data := append(h, []byte("Linux version 6.1.0-test (test) #1 SMP\x00")...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeExt4(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("needs mkfs.ext4")
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", path, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
}

func TestImageRegisterShowListRemove(t *testing.T) {
	d := newImageService(t)
	ctx := context.Background()
	dir := t.TempDir()
	kernelPath, rootfs := filepath.Join(dir, "vmlinux"), filepath.Join(dir, "rootfs.ext4")
	writeELFKernel(t, kernelPath)
	writeExt4(t, rootfs)

	det, err := d.Register(ctx, api.ImageRegisterParams{Name: "mine", Kernel: kernelPath, Rootfs: rootfs})
	if err != nil {
		t.Fatal(err)
	}
	if det.Managed || det.KernelPath != kernelPath || det.RootfsPath != rootfs || !strings.Contains(det.KernelVersion, "6.1.0-test") {
		t.Errorf("registered = %+v", det)
	}
	if !strings.HasPrefix(det.SeededSSHPublicKeyFingerprint, "SHA256:") {
		t.Errorf("no key fingerprint: %+v", det)
	}
	if _, err := os.Stat(d.cfg.SSHKeyPath); err != nil {
		t.Errorf("daemon key not generated: %v", err)
	}
	list, err := d.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "mine" {
		t.Fatalf("list = %v, %v", list, err)
	}
	shown, err := d.Show(ctx, det.ID[:8])
	if err != nil || shown.Name != "mine" || len(shown.UsedBy) != 0 {
		t.Errorf("show by id prefix = %+v, %v", shown, err)
	}
	d.cfg.DefaultImageName = "mine"
	if shown, err := d.Show(ctx, ""); err != nil || shown.Name != "mine" {
		t.Errorf("show of no name (the default image) = %+v, %v", shown, err)
	}

	// A VM on the image: removal is refused, naming it.
	now := model.Now()
	vm := model.VMRecord{ID: "vm1", Name: "dev", ImageID: det.ID, State: model.VMStateStopped, CreatedAt: now, UpdatedAt: now, LastTouchedAt: now}
	if err := d.store.(*store.Store).CreateVM(ctx, vm); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Remove(ctx, "mine"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "used by VM(s) dev") {
		t.Errorf("remove while used: %v", err)
	}
	if shown, _ := d.Show(ctx, "mine"); strings.Join(shown.UsedBy, ",") != "dev" {
		t.Errorf("used by = %v", shown.UsedBy)
	}
	d.store.(*store.Store).DeleteVM(ctx, vm.ID)

	res, err := d.Remove(ctx, "mine")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KeptFiles) != 2 {
		t.Errorf("kept files = %v", res.KeptFiles)
	}
	for _, f := range []string{kernelPath, rootfs} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("removing a registered image deleted the user's %s", f)
		}
	}
	if _, err := os.Stat(det.ArtifactDir); !os.IsNotExist(err) {
		t.Errorf("artifact dir %s left behind", det.ArtifactDir)
	}
	if _, err := d.Show(ctx, "mine"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("show after remove: %v", err)
	}
	if _, err := d.Remove(ctx, "mine"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}

func TestImageRegisterRefusesBadInput(t *testing.T) {
	d := newImageService(t)
	ctx := context.Background()
	dir := t.TempDir()
	kernelPath, rootfs, text := filepath.Join(dir, "vmlinux"), filepath.Join(dir, "rootfs.ext4"), filepath.Join(dir, "notes.txt")
	writeELFKernel(t, kernelPath)
	writeExt4(t, rootfs)
	os.WriteFile(text, []byte(strings.Repeat("not a kernel or a file system\n", 100)), 0o644)
	modsNoDep := filepath.Join(dir, "modules")
	os.Mkdir(modsNoDep, 0o755)
	if _, err := d.Register(ctx, api.ImageRegisterParams{Name: "taken", Kernel: kernelPath, Rootfs: rootfs}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		p    api.ImageRegisterParams
		code error
		want string
	}{
		{"no name", api.ImageRegisterParams{Kernel: kernelPath, Rootfs: rootfs}, errdefs.ErrInvalidArgument, "image name"},
		{"bad name", api.ImageRegisterParams{Name: "My_Image", Kernel: kernelPath, Rootfs: rootfs}, errdefs.ErrInvalidArgument, "not a DNS label"},
		{"name taken", api.ImageRegisterParams{Name: "taken", Kernel: kernelPath, Rootfs: rootfs}, errdefs.ErrConflict, "exists already"},
		{"no kernel", api.ImageRegisterParams{Name: "a", Rootfs: rootfs}, errdefs.ErrInvalidArgument, "--kernel and --rootfs are required"},
		{"no rootfs", api.ImageRegisterParams{Name: "a", Kernel: kernelPath}, errdefs.ErrInvalidArgument, "--kernel and --rootfs are required"},
		{"relative kernel", api.ImageRegisterParams{Name: "a", Kernel: "vmlinux", Rootfs: rootfs}, errdefs.ErrInvalidArgument, "must be an absolute path"},
		{"missing kernel", api.ImageRegisterParams{Name: "a", Kernel: filepath.Join(dir, "nope"), Rootfs: rootfs}, errdefs.ErrInvalidArgument, "no such file"},
		{"kernel is a directory", api.ImageRegisterParams{Name: "a", Kernel: dir, Rootfs: rootfs}, errdefs.ErrInvalidArgument, "not a regular file"},
		{"kernel is text", api.ImageRegisterParams{Name: "a", Kernel: text, Rootfs: rootfs}, errdefs.ErrInvalidArgument, "not an x86-64 ELF kernel or bzImage"},
		{"rootfs is not ext4", api.ImageRegisterParams{Name: "a", Kernel: kernelPath, Rootfs: text}, errdefs.ErrInvalidArgument, "not an ext4 file system image"},
		{"rootfs is a kernel", api.ImageRegisterParams{Name: "a", Kernel: kernelPath, Rootfs: kernelPath}, errdefs.ErrInvalidArgument, "not an ext4"},
		{"missing initrd", api.ImageRegisterParams{Name: "a", Kernel: kernelPath, Rootfs: rootfs, Initrd: filepath.Join(dir, "initrd")}, errdefs.ErrInvalidArgument, "--initrd"},
		{"modules dir without modules.dep", api.ImageRegisterParams{Name: "a", Kernel: kernelPath, Rootfs: rootfs, ModulesDir: modsNoDep}, errdefs.ErrInvalidArgument, "no modules.dep"},
		{"relative modules dir", api.ImageRegisterParams{Name: "a", Kernel: kernelPath, Rootfs: rootfs, ModulesDir: "lib/modules"}, errdefs.ErrInvalidArgument, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Register(ctx, tt.p)
			if !errors.Is(err, tt.code) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("register %+v: %v, want %v containing %q", tt.p, err, tt.code, tt.want)
			}
		})
	}
	if list, _ := d.List(ctx); len(list) != 1 {
		t.Errorf("failed registrations left images: %v", list)
	}
	entries, _ := os.ReadDir(d.layout.ImagesDir)
	if len(entries) != 1 {
		t.Errorf("failed registrations left artifact dirs: %v", entries)
	}
}

func TestImageBuildBeginChecksAtOnce(t *testing.T) {
	d := newImageService(t)
	ctx := context.Background()
	dir := t.TempDir()
	kernelPath, rootfs := filepath.Join(dir, "vmlinux"), filepath.Join(dir, "rootfs.ext4")
	writeELFKernel(t, kernelPath)
	writeExt4(t, rootfs)
	if _, err := d.Register(ctx, api.ImageRegisterParams{Name: "default", Kernel: kernelPath, Rootfs: rootfs}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p    api.ImageBuildParams
		code error
		want string
	}{
		{api.ImageBuildParams{}, errdefs.ErrConflict, `image "default" exists already; remove it first`},
		{api.ImageBuildParams{Name: "Bad Name"}, errdefs.ErrInvalidArgument, "not a DNS label"},
		{api.ImageBuildParams{Name: "x", Size: "10M"}, errdefs.ErrInvalidArgument, "too small"},
		{api.ImageBuildParams{Name: "x", Suite: "bookworm;rm"}, errdefs.ErrInvalidArgument, "--suite"},
		{api.ImageBuildParams{Name: "x", Packages: []string{"vim", "$(reboot)"}}, errdefs.ErrInvalidArgument, "--packages"},
		{api.ImageBuildParams{Name: "x", Initrd: "/boot/initrd"}, errdefs.ErrInvalidArgument, "--initrd needs --kernel"},
		{api.ImageBuildParams{Name: "x", Kernel: filepath.Join(dir, "none")}, errdefs.ErrInvalidArgument, "--kernel"},
		{api.ImageBuildParams{Name: "x", Kernel: rootfs}, errdefs.ErrInvalidArgument, "not an x86-64 ELF kernel"},
		{api.ImageBuildParams{Name: "x", Mirror: "gopher://x"}, errdefs.ErrInvalidArgument, "--mirror"},
	}
	for _, tt := range tests {
		_, err := d.BuildBegin(ctx, tt.p)
		if !errors.Is(err, tt.code) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("build %+v: %v, want %v containing %q", tt.p, err, tt.code, tt.want)
		}
	}
	os.Remove(d.builder.Guest.Binary)
	if _, err := d.BuildBegin(ctx, api.ImageBuildParams{Name: "y"}); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "banger-guest") {
		t.Errorf("build without banger-guest: %v", err)
	}
}
