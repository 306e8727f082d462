// Package images is the image service: it builds images from Debian
// packages (as operations with progress), registers images users bring,
// lists, shows and removes them. It owns the image rows of the store
// and the images directory; an image a VM uses cannot be removed.
package images

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/imagebuild"
	"banger/internal/model"
	"banger/internal/operation"
	"banger/internal/oplog"
	"banger/internal/paths"
)

// Store is the part of the store the image service uses: its own image
// rows, and which VMs use an image.
type Store interface {
	CreateImage(ctx context.Context, img model.Image) error
	FindImage(ctx context.Context, ref string) (model.Image, error)
	ListImages(ctx context.Context) ([]model.Image, error)
	DeleteImage(ctx context.Context, id string) error
	VMsUsingImage(ctx context.Context, imageID string) ([]model.VMRecord, error)
}

// Deps is what the service is built from.
type Deps struct {
	Config  model.DaemonConfig
	Layout  paths.Layout
	Store   Store
	Ops     *operation.Registry
	Builder *imagebuild.Builder
	Logger  *slog.Logger
}

// Service is the image service.
type Service struct {
	cfg     model.DaemonConfig
	layout  paths.Layout
	store   Store
	ops     *operation.Registry
	builder *imagebuild.Builder
	logger  *slog.Logger
}

// New builds the service.
func New(d Deps) *Service {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: d.Config, layout: d.Layout, store: d.Store, ops: d.Ops, builder: d.Builder, logger: d.Logger}
}

// Recover, at start-up, removes the work directories of builds a
// previous daemon did not finish.
func (s *Service) Recover(ctx context.Context) error {
	return s.builder.CleanLeftovers(ctx)
}

func (s *Service) List(ctx context.Context) ([]model.Image, error) {
	return s.store.ListImages(ctx)
}

func (s *Service) Show(ctx context.Context, ref string) (api.ImageDetail, error) {
	if ref == "" {
		ref = s.cfg.DefaultImageName
	}
	img, err := s.store.FindImage(ctx, ref)
	if err != nil {
		return api.ImageDetail{}, err
	}
	return s.detail(ctx, img)
}

// detail adds what the record does not hold: how the image was
// built, the space its files take, and the VMs that use it.
func (s *Service) detail(ctx context.Context, img model.Image) (api.ImageDetail, error) {
	det := api.ImageDetail{Image: img, UsedBy: []string{}}
	vms, err := s.store.VMsUsingImage(ctx, img.ID)
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
func (s *Service) Remove(ctx context.Context, ref string) (api.ImageRemoveResult, error) {
	op := oplog.Begin(ctx, s.logger, "image.remove", "image_ref", ref)
	img, err := s.store.FindImage(ctx, ref)
	if err != nil {
		return api.ImageRemoveResult{}, op.Fail(err)
	}
	vms, err := s.store.VMsUsingImage(ctx, img.ID)
	if err != nil {
		return api.ImageRemoveResult{}, op.Fail(err)
	}
	if len(vms) > 0 {
		names := make([]string, len(vms))
		for i, vm := range vms {
			names[i] = vm.Name
		}
		return api.ImageRemoveResult{}, op.Fail(fmt.Errorf("image %q is used by VM(s) %s; remove them first: %w",
			img.Name, strings.Join(names, ", "), errdefs.ErrConflict))
	}
	if err := s.store.DeleteImage(ctx, img.ID); err != nil {
		return api.ImageRemoveResult{}, op.Fail(err)
	}
	res := api.ImageRemoveResult{ID: img.ID, Name: img.Name, DeletedFiles: []string{}}
	if img.ArtifactDir != "" {
		if err := os.RemoveAll(img.ArtifactDir); err != nil {
			return res, op.Fail(fmt.Errorf("image %q removed, but not its files in %s: %w", img.Name, img.ArtifactDir, err))
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
	op.Done(oplog.ImageAttrs(img)...)
	return res, nil
}
