package vms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"banger/internal/disk"
	"banger/internal/guestapi"
	"banger/internal/model"
	"banger/internal/oplog"
	"banger/internal/sshkey"
)

const (
	// dmRecheck is how long the helper's answer on dm-snapshot is
	// trusted.
	dmRecheck = time.Minute
	// helperAskLimit bounds a helper.status call made on the way to
	// something else.
	helperAskLimit = 1500 * time.Millisecond
)

// dmCache is the helper's last answer on whether it can build
// dm-snapshots.
type dmCache struct {
	mu        sync.Mutex
	ok        bool
	checkedAt time.Time
}

// overlayStrategyNow is the system overlay strategy for a VM created
// now: dm-snapshot when the helper can build one, a reflink when the VMs
// directory clones files, else a sparse copy.
func (s *Service) overlayStrategyNow(ctx context.Context) disk.OverlayStrategy {
	return disk.ChooseOverlayStrategy(s.helperDMSnapshot(ctx), s.reflink)
}

// helperDMSnapshot asks the helper whether it can build dm-snapshots,
// at most once a minute; an unreachable helper means no.
func (s *Service) helperDMSnapshot(ctx context.Context) bool {
	c := &s.dm
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.checkedAt.IsZero() && time.Since(c.checkedAt) < dmRecheck {
		return c.ok
	}
	ctx, cancel := context.WithTimeout(ctx, helperAskLimit)
	defer cancel()
	st, err := s.helper.Status(ctx)
	c.ok = err == nil && st.DMSnapshot
	c.checkedAt = time.Now()
	return c.ok
}

// overlayFile names the system overlay in the VM's directory: the root
// file system itself for a clone, the snapshot's copy-on-write store for
// dm-snapshot.
func overlayFile(s disk.OverlayStrategy) string {
	if s == disk.OverlayDMSnapshot {
		return "system.cow"
	}
	return "system.ext4"
}

// makeOverlay clones the image's root file system as the VM's system
// overlay with the host's strategy, then grows it to the overlay size
// without writing data. Flushing the copy to disk (on the order of a
// second for a sparse copy of a Debian image) is left to the returned
// function, which the caller runs in the background once the work disk
// is made, while the guest boots: the guest's first flush would persist
// it anyway, and nothing needs it on disk before. (Run at once, it made
// the work disk's mkfs wait ~0.6 s in fsync behind it.)
func (s *Service) makeOverlay(ctx context.Context, vm model.VMRecord, img model.Image) (persist func(), err error) {
	strategy := disk.OverlayStrategy(vm.Runtime.OverlayStrategy)
	if strategy == disk.OverlayDMSnapshot {
		// The snapshot itself is built by the helper at each start; here
		// its copy-on-write store is made, sparse, as big as the overlay
		// may grow.
		if err := disk.CreateSparse(vm.Runtime.SystemOverlay, vm.Spec.SystemOverlaySizeByte); err != nil {
			return nil, fmt.Errorf("system overlay (%s): %w", strategy, err)
		}
		return func() {}, nil
	}
	sync, err := disk.CloneFileDeferSync(ctx, img.RootfsPath, vm.Runtime.SystemOverlay, strategy)
	if err != nil {
		return nil, fmt.Errorf("system overlay (%s): %w", strategy, err)
	}
	if err := disk.Grow(ctx, vm.Runtime.SystemOverlay, vm.Spec.SystemOverlaySizeByte); err != nil {
		return nil, fmt.Errorf("grow system overlay to %s: %w", model.FormatSizeBytes(vm.Spec.SystemOverlaySizeByte), err)
	}
	return func() {
		if err := sync(); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logger.WarnContext(ctx, "system overlay not flushed", append(oplog.VMAttrs(vm), "error", err.Error())...)
		}
	}, nil
}

// makeWorkDisk builds the work disk from the image's work seed, the
// config's file sync entries, the trees (a workspace), the daemon's
// public key, and a host key
// made for this VM alone — pinned in banger's known_hosts before the VM
// ever answers, so the first connection is verified too.
func (s *Service) makeWorkDisk(ctx context.Context, vm model.VMRecord, img model.Image, key sshkey.Key, trees []disk.Tree) ([]string, error) {
	host, err := sshkey.Generate("root@" + vm.Name)
	if err != nil {
		return nil, err
	}
	if err := s.knownHosts.Set(vm.ID, host.Public()); err != nil {
		return nil, fmt.Errorf("pin host key: %w", err)
	}
	res, err := disk.BuildWorkDisk(ctx, disk.WorkDiskSpec{
		Path:      vm.Runtime.WorkDiskPath,
		SizeBytes: vm.Spec.WorkDiskSizeBytes,
		SeedDir:   img.WorkSeedPath,
		Files: []disk.File{
			{GuestPath: guestapi.AuthorizedKeysPath, Data: key.AuthorizedKey("bangerd"), Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath, Data: host.PrivatePEM, Mode: 0o600},
			{GuestPath: guestapi.HostKeyPath + ".pub", Data: host.AuthorizedKey("root@" + vm.Name), Mode: 0o644},
		},
		Sync:  s.cfg.FileSync,
		Home:  s.cfg.HostHomeDir,
		Trees: trees,
	})
	if err != nil {
		return nil, fmt.Errorf("work disk: %w", err)
	}
	return res.Warnings, nil
}

// deleteVMFiles removes the VM's directory and sockets and unpins its
// host key. It never removes anything outside banger's own directories.
func (s *Service) deleteVMFiles(vm model.VMRecord) error {
	if err := s.knownHosts.Remove(vm.ID); err != nil {
		return fmt.Errorf("unpin host key: %w", err)
	}
	for _, sock := range []string{vm.Runtime.APISockPath, vm.Runtime.VSockPath} {
		if sock != "" && within(sock, s.layout.RuntimeDir) {
			if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", sock, err)
			}
		}
	}
	if vm.Runtime.VMDir == "" || !within(vm.Runtime.VMDir, s.layout.VMsDir) {
		return nil
	}
	if err := os.RemoveAll(vm.Runtime.VMDir); err != nil {
		return fmt.Errorf("remove %s: %w", vm.Runtime.VMDir, err)
	}
	return nil
}

// within reports whether path lies strictly inside dir.
func within(path, dir string) bool {
	return dir != "" && strings.HasPrefix(filepath.Clean(path), filepath.Clean(dir)+string(filepath.Separator))
}
