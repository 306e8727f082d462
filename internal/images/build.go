package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/imagebuild"
	"banger/internal/kernel"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/oplog"
	"banger/internal/sshkey"
)

const (
	KindBuild     = "image.build"
	stageValidate = "validate"
	stageRegister = "register"
)

// imageBuildStages is what `image build` shows progress through.
var imageBuildStages = append(append([]string{stageValidate}, imagebuild.Stages...), stageRegister)

// imageBuildBegin checks a build request and starts the build as an
// operation whose id is this request's op id. Mistakes in the request are
// reported at once, not as a failed operation.
func (s *Service) BuildBegin(ctx context.Context, p api.ImageBuildParams) (model.Operation, error) {
	name := p.Name
	if name == "" {
		name = s.cfg.DefaultImageName
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
	for _, f := range []struct{ flag, path string }{{"--kernel", recipe.KernelPath}, {"--initrd", recipe.InitrdPath}} {
		if err := checkReadableFile(f.flag, f.path); err != nil {
			return model.Operation{}, err
		}
	}
	if recipe.KernelPath != "" {
		if _, err := kernel.Inspect(recipe.KernelPath); err != nil {
			return model.Operation{}, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("--kernel %s: %w", recipe.KernelPath, err))
		}
	}
	if err := s.nameFree(ctx, name); err != nil {
		return model.Operation{}, err
	}
	if _, err := os.Stat(s.builder.Guest.Binary); err != nil {
		return model.Operation{}, fmt.Errorf("banger-guest, which every image needs, is not at %s (build it with 'make build' or set BANGER_GUEST_BIN): %w",
			s.builder.Guest.Binary, errdefs.ErrUnavailable)
	}
	return s.ops.Begin(ctx, KindBuild, name, imageBuildStages, func(ctx context.Context, r *operation.Reporter) (any, error) {
		return s.buildImage(ctx, r, recipe)
	})
}

// imageNameFree refuses a name an image or a running build has.
func (s *Service) nameFree(ctx context.Context, name string) error {
	if img, err := s.store.FindImage(ctx, name); err == nil && img.Name == name {
		return fmt.Errorf("image %q exists already; remove it first with 'banger image rm %s': %w", name, name, errdefs.ErrConflict)
	}
	if running := s.ops.Running(KindBuild, name); len(running) > 0 {
		return fmt.Errorf("image %q is being built already (%s): %w", name, running[0].ID, errdefs.ErrConflict)
	}
	return nil
}

func (s *Service) buildImage(ctx context.Context, r *operation.Reporter, recipe imagebuild.Recipe) (api.ImageDetail, error) {
	op := oplog.Begin(ctx, s.logger, KindBuild, "image_name", recipe.Name, "suite", recipe.Suite)
	rep := operation.Logged{Reporter: r, Log: op}
	rep.Stage(stageValidate)
	key, err := sshkey.Ensure(s.cfg.SSHKeyPath, "bangerd")
	if err != nil {
		return api.ImageDetail{}, op.Fail(fmt.Errorf("daemon ssh key: %w", err))
	}
	id, err := model.NewID()
	if err != nil {
		return api.ImageDetail{}, op.Fail(err)
	}
	art, err := s.builder.Build(ctx, id, recipe, rep)
	if err != nil {
		return api.ImageDetail{}, op.Fail(err)
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
	if err := s.store.CreateImage(ctx, img); err != nil {
		os.RemoveAll(art.ArtifactDir)
		return api.ImageDetail{}, op.Fail(err)
	}
	op.Done(append(oplog.ImageAttrs(img), "kernel_version", art.KernelVersion, "duration_ms", art.Duration.Milliseconds())...)
	return s.detail(ctx, img)
}

// GuestBinary finds banger-guest: $BANGER_GUEST_BIN, next to bangerd (as
// make build and system install lay them out), or on $PATH. When it is
// nowhere, the path next to bangerd is returned, so the error that
// follows says where it was expected.
func GuestBinary() string {
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
