// Package workspace is the workspace service: it puts a host git
// repository into a VM (on the work disk as the VM is made, or over SSH
// into a running one), records where it went, and harvests the commits
// made in the guest back into the host repository as a branch. The git
// work on the host is internal/gitrepo's; what crosses into or out of
// the guest goes over the daemon's SSH connection to it. Everything
// that comes out of a guest is bounded and checked: the guest is
// untrusted.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"banger/internal/api"
	"banger/internal/errdefs"
	"banger/internal/gitrepo"
	"banger/internal/guestapi"
	"banger/internal/guestssh"
	"banger/internal/model"
	"banger/internal/operation"
)

// Store is the part of the store the service uses: its own workspace
// rows.
type Store interface {
	SaveWorkspace(ctx context.Context, ws model.WorkspacePrepareResult, preparedTree string) error
	GetWorkspace(ctx context.Context, vmID string) (model.Workspace, error)
	ListWorkspaces(ctx context.Context) (map[string]model.Workspace, error)
	RecordHarvest(ctx context.Context, vmID, commit string, at time.Time) error
}

// VMs is what the service asks of the VM service.
type VMs interface {
	// Show finds a VM by name, id or id prefix.
	Show(ctx context.Context, ref string) (api.VMDetail, error)
	// GuestTarget is how to reach a running VM over SSH.
	GuestTarget(ctx context.Context, ref string) (model.VMRecord, guestssh.Target, error)
}

// Deps is what the service is built from.
type Deps struct {
	Store  Store
	VMs    VMs
	Guests *guestssh.Pool // the daemon's SSH connections to its guests
	Ops    *operation.Registry
	Logger *slog.Logger
	// TempDir is where repositories for running VMs are built and
	// bundles from guests land, on the host.
	TempDir string
	// MaxBundleBytes bounds a guest's bundle (0: gitrepo's default).
	MaxBundleBytes int64
	// GuestHome is where workspaces go in the guest: /root, unless a test
	// points the service at a directory of its own.
	GuestHome string
	// Clock is model.Now unless a test sets it.
	Clock func() time.Time
}

// Service is the workspace service.
type Service struct {
	store     Store
	vms       VMs
	guests    *guestssh.Pool
	ops       *operation.Registry
	logger    *slog.Logger
	tempDir   string
	maxBundle int64
	home      string
	now       func() time.Time
	locks     sync.Map // vm id → chan struct{} (cap 1): held by a prepare's start or a harvest
}

// New builds the service.
func New(d Deps) *Service {
	s := &Service{
		store: d.Store, vms: d.VMs, guests: d.Guests, ops: d.Ops, logger: d.Logger,
		tempDir: d.TempDir, maxBundle: d.MaxBundleBytes, home: d.GuestHome, now: d.Clock,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.home == "" {
		s.home = guestapi.WorkMountPoint
	}
	if s.maxBundle == 0 {
		s.maxBundle = gitrepo.DefaultMaxBundleBytes
	}
	if s.now == nil {
		s.now = model.Now
	}
	return s
}

// Show is the VM's workspace.
func (s *Service) Show(ctx context.Context, ref string) (model.Workspace, error) {
	vm, err := s.vms.Show(ctx, ref)
	if err != nil {
		return model.Workspace{}, err
	}
	ws, err := s.store.GetWorkspace(ctx, vm.ID)
	if errors.Is(err, errdefs.ErrNotFound) {
		return ws, fmt.Errorf("vm %s has no workspace; prepare one with 'banger workspace prepare %s [PATH]': %w", vm.Name, vm.Name, errdefs.ErrNotFound)
	}
	return ws, err
}

// Of is the VM's workspace, if it has one: for vm show.
func (s *Service) Of(ctx context.Context, vmID string) (*model.Workspace, error) {
	ws, err := s.store.GetWorkspace(ctx, vmID)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &ws, nil
}

// All is every VM's workspace by VM id: for vm list.
func (s *Service) All(ctx context.Context) (map[string]model.Workspace, error) {
	return s.store.ListWorkspaces(ctx)
}

// source is a workspace about to be made: the repository and the mode.
type source struct {
	repo gitrepo.Repo
	mode model.WorkspacePrepareMode
}

// inspect checks a workspace's repository and mode, in that order.
func (s *Service) inspect(ctx context.Context, spec model.WorkspacePrepareMode, p string) (source, error) {
	if !filepath.IsAbs(p) {
		return source{}, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("workspace path %q is not absolute", p))
	}
	repo, err := gitrepo.Inspect(ctx, p)
	if err != nil {
		return source{}, err
	}
	if err := checkRepoName(repo.Name); err != nil {
		return source{}, err
	}
	return source{repo: repo, mode: spec}, nil
}

// guestPath is where a repository goes in the guest.
func (s *Service) guestPath(name string) string { return path.Join(s.home, name) }

// checkRepoName refuses repository names that would land on banger's
// own paths in the guest, or cannot be a single path element.
func checkRepoName(name string) error {
	switch {
	case name == "" || name == "." || name == ".." || name == "/" || strings.ContainsAny(name, "/\x00\n"):
		return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("repository directory name %q cannot be a directory in the guest", name))
	case name == ".ssh" || strings.HasPrefix(name, ".banger"):
		return errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("a repository named %q would land on banger's own /root/%s in the guest; rename or clone it under another name", name, name))
	}
	return nil
}

// result is the seed's record of a workspace made from src in vm.
func (s *Service) result(vm model.VMRecord, src source) model.WorkspacePrepareResult {
	return model.WorkspacePrepareResult{
		VMID: vm.ID, SourcePath: src.repo.SourcePath, RepoRoot: src.repo.Root, RepoName: src.repo.Name,
		GuestPath: s.guestPath(src.repo.Name), Mode: src.mode,
		HeadCommit: src.repo.Head, CurrentBranch: src.repo.Branch,
		BranchName: model.WorkspaceBranch(vm.Name), BaseCommit: src.repo.Head,
		PreparedAt: s.now(),
	}
}

// lock serialises the prepares and harvests of one VM; waiting for it
// ends with ctx.
func (s *Service) lock(ctx context.Context, vmID string) (func(), error) {
	m, _ := s.locks.LoadOrStore(vmID, make(chan struct{}, 1))
	held := m.(chan struct{})
	select {
	case held <- struct{}{}:
		return func() { <-held }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for another workspace operation on this VM: %w", ctx.Err())
	}
}
