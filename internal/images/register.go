package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/initramfs"
	"banger/internal/kernel"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/sshkey"
)

// imageRegister records an image a user brings. Their files are checked
// and used where they are; what banger derives from them (a vmlinux
// extracted from a bzImage, an initramfs built from a modules directory)
// goes in an artifact directory of banger's, the only thing removal
// deletes.
func (s *Service) Register(ctx context.Context, p api.ImageRegisterParams) (api.ImageDetail, error) {
	op := oplog.Begin(ctx, s.logger, "image.register", "image_name", p.Name)
	img, err := s.registerImage(ctx, p)
	if err != nil {
		return api.ImageDetail{}, op.Fail(err)
	}
	op.Done(oplog.ImageAttrs(img)...)
	return s.detail(ctx, img)
}

// checkRegister checks a register request, in a fixed order (name,
// required flags, each file, the modules directory, the kernel, the
// root file system, the name being free), before anything is made.
func (s *Service) checkRegister(ctx context.Context, p api.ImageRegisterParams) (kernel.Info, error) {
	bad := func(format string, args ...any) (kernel.Info, error) {
		return kernel.Info{}, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...))
	}
	if err := model.ValidateName("image", p.Name); err != nil {
		return kernel.Info{}, err
	}
	if p.Kernel == "" || p.Rootfs == "" {
		return bad("--kernel and --rootfs are required")
	}
	for _, f := range []struct{ flag, path string }{{"--kernel", p.Kernel}, {"--rootfs", p.Rootfs}, {"--initrd", p.Initrd}} {
		if err := checkReadableFile(f.flag, f.path); err != nil {
			return kernel.Info{}, err
		}
	}
	if p.ModulesDir != "" {
		if !filepath.IsAbs(p.ModulesDir) {
			return bad("--modules-dir %q must be an absolute path", p.ModulesDir)
		}
		if _, err := os.Stat(filepath.Join(p.ModulesDir, "modules.dep")); err != nil {
			return bad("--modules-dir %s has no modules.dep (it should be a kernel's /lib/modules/<release>)", p.ModulesDir)
		}
	}
	info, err := kernel.Inspect(p.Kernel)
	if err != nil {
		return bad("--kernel %s: %w", p.Kernel, err)
	}
	if ok, err := isExt4(p.Rootfs); err != nil || !ok {
		return bad("--rootfs %s is not an ext4 file system image", p.Rootfs)
	}
	if err := s.nameFree(ctx, p.Name); err != nil {
		return kernel.Info{}, err
	}
	return info, nil
}

func (s *Service) registerImage(ctx context.Context, p api.ImageRegisterParams) (img model.Image, err error) {
	bad := func(format string, args ...any) (model.Image, error) {
		return model.Image{}, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...))
	}
	info, err := s.checkRegister(ctx, p)
	if err != nil {
		return model.Image{}, err
	}
	key, err := sshkey.Ensure(s.cfg.SSHKeyPath, "bangerd")
	if err != nil {
		return model.Image{}, fmt.Errorf("daemon ssh key: %w", err)
	}
	id, err := model.NewID()
	if err != nil {
		return model.Image{}, err
	}
	now := model.Now()
	img = model.Image{
		ID: id, Name: p.Name, Managed: false,
		ArtifactDir: filepath.Join(s.layout.ImagesDir, id),
		RootfsPath:  p.Rootfs, KernelPath: p.Kernel, InitrdPath: p.Initrd, ModulesDir: p.ModulesDir,
		SeededSSHPublicKeyFingerprint: key.Fingerprint(),
		CreatedAt:                     now, UpdatedAt: now,
	}
	if err := os.MkdirAll(img.ArtifactDir, 0o755); err != nil {
		return model.Image{}, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(img.ArtifactDir)
		}
	}()
	if info.Format != kernel.FormatELF {
		img.KernelPath = filepath.Join(img.ArtifactDir, "vmlinux")
		if _, err := kernel.ExtractVmlinuxFile(p.Kernel, img.KernelPath); err != nil {
			return bad("--kernel %s: %w", p.Kernel, err)
		}
		if info, err = kernel.Inspect(img.KernelPath); err != nil {
			return bad("--kernel %s: extracted: %w", p.Kernel, err)
		}
	}
	if p.Initrd == "" && p.ModulesDir != "" {
		if img.InitrdPath, err = s.initramfsFromModules(p.ModulesDir, img.ArtifactDir); err != nil {
			return model.Image{}, err
		}
	}
	version := info.Release
	if version == "" {
		version = info.Version
	}
	meta, _ := json.Marshal(map[string]string{"kernel_version": version})
	if err := os.WriteFile(filepath.Join(img.ArtifactDir, "register.json"), meta, 0o644); err != nil {
		return model.Image{}, err
	}
	if err := s.store.CreateImage(ctx, img); err != nil {
		return model.Image{}, err
	}
	return img, nil
}

// initramfsFromModules builds banger's initramfs from a registered
// kernel's modules directory, when it needs any; "" when it needs none.
func (s *Service) initramfsFromModules(modDir, artifactDir string) (string, error) {
	mods, err := kernel.ResolveModules(modDir, kernel.DefaultGuestModules())
	if err != nil {
		return "", errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("--modules-dir %s: %w", modDir, err))
	}
	if len(mods) == 0 {
		return "", nil
	}
	path := filepath.Join(artifactDir, "initrd.cpio")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	spec := initramfs.Spec{Init: s.builder.Guest.Binary, ModulesDir: modDir, Modules: mods, Release: filepath.Base(modDir)}
	if err := initramfs.Build(f, spec); err != nil {
		return "", fmt.Errorf("initramfs from %s: %w", modDir, err)
	}
	return path, f.Close()
}

// isExt4 checks the superblock magic (0xEF53 at byte 1024+56).
func isExt4(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var magic [2]byte
	if _, err := f.ReadAt(magic[:], 1024+56); err != nil {
		return false, nil
	}
	return magic[0] == 0x53 && magic[1] == 0xEF, nil
}

func checkReadableFile(flag, path string) error {
	if path == "" {
		return nil
	}
	if !filepath.IsAbs(path) {
		return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("%s %q must be an absolute path", flag, path))
	}
	f, err := os.Open(path)
	if err != nil {
		return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("%s %s: %w", flag, path, errdefs.PathCause(err)))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("%s %s is not a regular file", flag, path))
	}
	return nil
}
