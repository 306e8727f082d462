package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/imagebuild"
	"banger/internal/initramfs"
	"banger/internal/kernel"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/sshkey"
)

const (
	kindImageBuild = "image.build"
	stageValidate  = "validate"
	stageRegister  = "register"
)

// imageBuildStages is what `image build` shows progress through.
var imageBuildStages = append(append([]string{stageValidate}, imagebuild.Stages...), stageRegister)

// imageBuildBegin checks a build request and starts the build as an
// operation whose id is this request's op id. Mistakes in the request are
// reported at once, not as a failed operation.
func (d *Daemon) imageBuildBegin(ctx context.Context, p api.ImageBuildParams) (model.Operation, error) {
	name := p.Name
	if name == "" {
		name = d.cfg.DefaultImageName
	}
	if err := model.ValidateName("image", name); err != nil {
		return model.Operation{}, err
	}
	recipe, _, err := imagebuild.Recipe{
		Name: name, Suite: p.Suite, Packages: p.Packages, Size: p.Size, Mirror: p.Mirror,
		KernelPath: p.Kernel, InitrdPath: p.Initrd,
	}.Normalize()
	if err != nil {
		return model.Operation{}, err
	}
	for flag, path := range map[string]string{"--kernel": recipe.KernelPath, "--initrd": recipe.InitrdPath} {
		if err := checkReadableFile(flag, path); err != nil {
			return model.Operation{}, err
		}
	}
	if recipe.KernelPath != "" {
		if _, err := kernel.Inspect(recipe.KernelPath); err != nil {
			return model.Operation{}, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("--kernel %s: %v", recipe.KernelPath, err))
		}
	}
	if err := d.imageNameFree(ctx, name); err != nil {
		return model.Operation{}, err
	}
	if _, err := os.Stat(d.builder.Guest.Binary); err != nil {
		return model.Operation{}, fmt.Errorf("banger-guest, which every image needs, is not at %s (build it with 'make build' or set BANGER_GUEST_BIN): %w",
			d.builder.Guest.Binary, errdefs.ErrUnavailable)
	}
	return d.ops.Begin(ctx, kindImageBuild, name, imageBuildStages, func(ctx context.Context, r *operation.Reporter) (any, error) {
		return d.buildImage(ctx, r, recipe)
	})
}

// imageNameFree refuses a name an image or a running build has.
func (d *Daemon) imageNameFree(ctx context.Context, name string) error {
	if img, err := d.store.FindImage(ctx, name); err == nil && img.Name == name {
		return fmt.Errorf("image %q exists already; remove it first with 'banger image rm %s': %w", name, name, errdefs.ErrConflict)
	}
	if running := d.ops.Running(kindImageBuild, name); len(running) > 0 {
		return fmt.Errorf("image %q is being built already (%s): %w", name, running[0].ID, errdefs.ErrConflict)
	}
	return nil
}

// stageLog forwards an operation's progress to its reporter and its
// stages to the daemon's log.
type stageLog struct {
	*operation.Reporter
	op *operationLog
}

func (s stageLog) Stage(name string) {
	s.Reporter.Stage(name)
	s.op.stage(name)
}

func (d *Daemon) buildImage(ctx context.Context, r *operation.Reporter, recipe imagebuild.Recipe) (api.ImageDetail, error) {
	op := d.beginOperation(ctx, kindImageBuild, "image_name", recipe.Name, "suite", recipe.Suite)
	rep := stageLog{Reporter: r, op: op}
	rep.Stage(stageValidate)
	key, err := sshkey.Ensure(d.cfg.SSHKeyPath, "bangerd")
	if err != nil {
		return api.ImageDetail{}, op.fail(fmt.Errorf("daemon ssh key: %w", err))
	}
	id, err := model.NewID()
	if err != nil {
		return api.ImageDetail{}, op.fail(err)
	}
	art, err := d.builder.Build(ctx, id, recipe, rep)
	if err != nil {
		return api.ImageDetail{}, op.fail(err)
	}

	rep.Stage(stageRegister)
	now := model.Now()
	img := model.Image{
		ID:                            id,
		Name:                          recipe.Name,
		Managed:                       true,
		ArtifactDir:                   art.ArtifactDir,
		RootfsPath:                    art.RootfsPath,
		WorkSeedPath:                  art.WorkSeedPath,
		KernelPath:                    art.KernelPath,
		InitrdPath:                    art.InitrdPath,
		BuildSize:                     recipe.Size,
		SeededSSHPublicKeyFingerprint: key.Fingerprint(),
		CreatedAt:                     now,
		UpdatedAt:                     now,
	}
	if err := d.store.CreateImage(ctx, img); err != nil {
		os.RemoveAll(art.ArtifactDir)
		return api.ImageDetail{}, op.fail(err)
	}
	op.done(append(imageLogAttrs(img), "kernel_version", art.KernelVersion, "duration_ms", art.Duration.Milliseconds())...)
	return d.imageDetail(ctx, img)
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
		return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("%s %s: %v", flag, path, unwrapPathError(err)))
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

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// imageRegister records an image a user brings. Their files are checked
// and used where they are; what banger derives from them (a vmlinux
// extracted from a bzImage, an initramfs built from a modules directory)
// goes in an artifact directory of banger's, the only thing removal
// deletes.
func (d *Daemon) imageRegister(ctx context.Context, p api.ImageRegisterParams) (api.ImageDetail, error) {
	op := d.beginOperation(ctx, "image.register", "image_name", p.Name)
	img, err := d.registerImage(ctx, p)
	if err != nil {
		return api.ImageDetail{}, op.fail(err)
	}
	op.done(imageLogAttrs(img)...)
	return d.imageDetail(ctx, img)
}

func (d *Daemon) registerImage(ctx context.Context, p api.ImageRegisterParams) (img model.Image, err error) {
	bad := func(format string, args ...any) (model.Image, error) {
		return model.Image{}, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf(format, args...))
	}
	if err := model.ValidateName("image", p.Name); err != nil {
		return model.Image{}, err
	}
	if p.Kernel == "" || p.Rootfs == "" {
		return bad("--kernel and --rootfs are required")
	}
	for flag, path := range map[string]string{"--kernel": p.Kernel, "--rootfs": p.Rootfs, "--initrd": p.Initrd} {
		if err := checkReadableFile(flag, path); err != nil {
			return model.Image{}, err
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
		return bad("--kernel %s: %v", p.Kernel, err)
	}
	if ok, err := isExt4(p.Rootfs); err != nil || !ok {
		return bad("--rootfs %s is not an ext4 file system image", p.Rootfs)
	}
	if err := d.imageNameFree(ctx, p.Name); err != nil {
		return model.Image{}, err
	}
	key, err := sshkey.Ensure(d.cfg.SSHKeyPath, "bangerd")
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
		ArtifactDir: filepath.Join(d.layout.ImagesDir, id),
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
			return bad("--kernel %s: %v", p.Kernel, err)
		}
		if info, err = kernel.Inspect(img.KernelPath); err != nil {
			return bad("--kernel %s: extracted: %v", p.Kernel, err)
		}
	}
	if p.Initrd == "" && p.ModulesDir != "" {
		if img.InitrdPath, err = d.initramfsFromModules(p.ModulesDir, img.ArtifactDir); err != nil {
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
	if err := d.store.CreateImage(ctx, img); err != nil {
		return model.Image{}, err
	}
	return img, nil
}

// initramfsFromModules builds banger's initramfs from a registered
// kernel's modules directory, when it needs any; "" when it needs none.
func (d *Daemon) initramfsFromModules(modDir, artifactDir string) (string, error) {
	mods, err := kernel.ResolveModules(modDir, kernel.DefaultGuestModules())
	if err != nil {
		return "", errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("--modules-dir %s: %v", modDir, err))
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
	spec := initramfs.Spec{Init: d.builder.Guest.Binary, ModulesDir: modDir, Modules: mods, Release: filepath.Base(modDir)}
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

func (d *Daemon) imageList(ctx context.Context, _ struct{}) ([]model.Image, error) {
	return d.store.ListImages(ctx)
}

func (d *Daemon) imageShow(ctx context.Context, p api.ImageRef) (api.ImageDetail, error) {
	img, err := d.store.FindImage(ctx, p.Name)
	if err != nil {
		return api.ImageDetail{}, err
	}
	return d.imageDetail(ctx, img)
}

// imageDetail adds what the record does not hold: how the image was
// built, the space its files take, and the VMs that use it.
func (d *Daemon) imageDetail(ctx context.Context, img model.Image) (api.ImageDetail, error) {
	det := api.ImageDetail{Image: img, UsedBy: []string{}}
	vms, err := d.store.VMsUsingImage(ctx, img.ID)
	if err != nil {
		return det, err
	}
	for _, vm := range vms {
		det.UsedBy = append(det.UsedBy, vm.Name)
	}
	if img.ArtifactDir != "" {
		det.DiskBytes = allocatedBytes(img.ArtifactDir)
		var build imagebuild.Artifacts
		if data, err := os.ReadFile(filepath.Join(img.ArtifactDir, "build.json")); err == nil && json.Unmarshal(data, &build) == nil {
			det.KernelVersion = build.KernelVersion
			det.Build = &api.ImageBuildInfo{
				Suite: build.Recipe.Suite, Packages: build.Recipe.AllPackages(), Mirror: build.Mirror, Mode: string(build.Mode),
				KernelVersion: build.KernelVersion, Modules: build.Modules, BuildLog: build.BuildLog,
				Duration: build.Duration, CachedDebs: build.CachedDebs,
			}
		}
		var reg struct {
			KernelVersion string `json:"kernel_version"`
		}
		if data, err := os.ReadFile(filepath.Join(img.ArtifactDir, "register.json")); err == nil && json.Unmarshal(data, &reg) == nil {
			det.KernelVersion = reg.KernelVersion
		}
	}
	return det, nil
}

// allocatedBytes is the disk space a directory's files take (sparse
// files count only what is written).
func allocatedBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := e.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}

// imageRemove deletes an image no VM uses: its record, and its artifact
// directory — all of a built image; only what banger derived for a
// registered one, whose own files are never touched.
func (d *Daemon) imageRemove(ctx context.Context, p api.ImageRef) (api.ImageRemoveResult, error) {
	op := d.beginOperation(ctx, "image.remove", "image_ref", p.Name)
	img, err := d.store.FindImage(ctx, p.Name)
	if err != nil {
		return api.ImageRemoveResult{}, op.fail(err)
	}
	vms, err := d.store.VMsUsingImage(ctx, img.ID)
	if err != nil {
		return api.ImageRemoveResult{}, op.fail(err)
	}
	if len(vms) > 0 {
		names := make([]string, len(vms))
		for i, vm := range vms {
			names[i] = vm.Name
		}
		return api.ImageRemoveResult{}, op.fail(fmt.Errorf("image %q is used by VM(s) %s; remove them first: %w",
			img.Name, strings.Join(names, ", "), errdefs.ErrConflict))
	}
	if err := d.store.DeleteImage(ctx, img.ID); err != nil {
		return api.ImageRemoveResult{}, op.fail(err)
	}
	res := api.ImageRemoveResult{ID: img.ID, Name: img.Name, DeletedFiles: []string{}}
	if img.ArtifactDir != "" {
		if err := os.RemoveAll(img.ArtifactDir); err != nil {
			return res, op.fail(fmt.Errorf("image %q removed, but not its files in %s: %w", img.Name, img.ArtifactDir, err))
		}
		res.DeletedFiles = append(res.DeletedFiles, img.ArtifactDir)
	}
	if !img.Managed {
		for _, f := range []string{img.KernelPath, img.RootfsPath, img.InitrdPath, img.ModulesDir} {
			if f != "" && !strings.HasPrefix(f, img.ArtifactDir+string(filepath.Separator)) {
				res.KeptFiles = append(res.KeptFiles, f)
			}
		}
	}
	op.done(imageLogAttrs(img)...)
	return res, nil
}

// guestBinary finds banger-guest: $BANGER_GUEST_BIN, next to bangerd (as
// make build and system install lay them out), or on $PATH. When it is
// nowhere, the path next to bangerd is returned, so the error that
// follows says where it was expected.
func guestBinary() string {
	if bin := os.Getenv("BANGER_GUEST_BIN"); bin != "" {
		return bin
	}
	sibling := "banger-guest"
	if self, err := os.Executable(); err == nil {
		sibling = filepath.Join(filepath.Dir(self), "banger-guest")
		if _, err := os.Stat(sibling); err == nil {
			return sibling
		}
	}
	if bin, err := exec.LookPath("banger-guest"); err == nil {
		return bin
	}
	return sibling
}
