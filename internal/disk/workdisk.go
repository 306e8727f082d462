package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"banger/internal/errdefs"
	"banger/internal/model"
)

// WorkDiskLabel is the ext4 label of every work disk.
const WorkDiskLabel = "banger-work"

// MinWorkDiskSize is the smallest work disk BuildWorkDisk makes: room
// for ext4's journal and metadata and a little more.
const MinWorkDiskSize = 8 << 20

// File is a file the daemon places on a work disk: the authorized key,
// the VM's host key. Files are written after the seed and file sync, so
// nothing those copy can replace them.
type File struct {
	GuestPath string // under /root: "/root/.ssh/authorized_keys", or "~/..."
	Data      []byte
	Mode      os.FileMode // permission bits; 0 means 0600
}

// WorkDiskSpec is what a work disk is built from.
type WorkDiskSpec struct {
	Path      string // the image file to make; replaced if it exists
	SizeBytes int64
	// SeedDir is the image's work seed: what /root starts with. It is
	// copied as it is, modes and symlinks included. "" or a missing
	// directory means none.
	SeedDir string
	// Files are written last, over anything else at their paths; their
	// missing parents are made 0700.
	Files []File
	// Sync is the config's file sync, applied in order after the seed.
	Sync []model.FileSyncEntry
	// Home is what "~/" means in a file sync host path: the configured
	// host home directory.
	Home string
	// Trees are directories made for this disk (a workspace), moved into
	// place after the seed and file sync, before Files.
	Trees []Tree
}

// Tree is a directory made elsewhere that becomes a path on the work
// disk. It is moved, not copied, so it must be on the file system the
// disk is made on (in the VM's directory); once BuildWorkDisk is called
// it is the disk's, and is gone when it returns.
type Tree struct {
	GuestPath string // under /root: "/root/myproject"
	Dir       string // the directory on the host
	Bytes     int64  // its content, checked against the disk's size
}

// Ownership says whose the files on a work disk are, which decides
// whether banger-guest has anything to chown when it boots.
type Ownership string

const (
	// OwnedByRoot: the daemon runs as root, so the files it staged, and
	// so those on the disk, are root's.
	OwnedByRoot Ownership = "root"
	// OwnedByRootUnshare: an unprivileged daemon ran mkfs.ext4 in a user
	// namespace that maps its uid to 0 (unshare --map-root-user), so the
	// disk records its files as root's.
	OwnedByRootUnshare Ownership = "unshare"
	// OwnedByUser: the files carry the daemon's uid and gid, since user
	// namespaces are not available to it; banger-guest chowns them to
	// root at boot.
	OwnedByUser Ownership = "user"
)

// MkfsLazyInit are the mkfs.ext4 options for a file system made in a new
// sparse file: the journal and inode tables are left unwritten, since
// the file's holes already read as zeros. Without them mkfs writes a
// 32 MiB journal of zeros into a 1 GiB work disk, and the create then
// waits for it to reach the disk; with them the file holds well under
// a megabyte.
var MkfsLazyInit = []string{"-E", "lazy_itable_init=1,lazy_journal_init=1"}

// mkfsNoResizeInode leaves out the reserved group descriptor blocks that
// let a mounted ext4 grow online. Work disks only ever grow offline
// (GrowWorkDisk, on a stopped VM: resize2fs relocates what it must), and
// writing those reserved blocks was half of mkfs's work: 5.3 ms of CPU
// for an 8 GiB disk with them, 2.7 ms without (perf stat, this machine),
// which ten creates at once on two cores wait for.
var mkfsNoResizeInode = []string{"-O", "^resize_inode"}

// GuestChowns reports whether banger-guest has files to chown to root
// when it mounts the disk.
func (o Ownership) GuestChowns() bool { return o == OwnedByUser }

// WorkDiskResult is what BuildWorkDisk did.
type WorkDiskResult struct {
	Ownership Ownership
	// Warnings are file sync entries (or seed files) that were skipped:
	// a missing host path, a socket. The create goes on; the user should
	// hear about them.
	Warnings []string
	// CopiedBytes is the file content staged: seed, file sync and Files.
	CopiedBytes int64
}

// unshareWorks reports whether this process can map itself to root in a
// new user namespace. It is asked once per process: the answer is the
// host's configuration, which does not change under a running daemon.
// Tests replace it to take the fallback path.
var unshareWorks = sync.OnceValue(func() bool {
	return exec.Command(Tool("unshare"), "--map-root-user", "true").Run() == nil
})

// BuildWorkDisk makes the ext4 image spec.Path, spec.SizeBytes big,
// holding the work seed, then the file sync entries in order (a later
// one may replace an earlier one's files), then spec.Files. The tree is
// assembled in a private staging directory next to spec.Path and
// written into the image by mkfs.ext4 -d: nothing is mounted and no
// root is needed. The image is made under a temporary name and renamed
// into place, so a failure or cancellation leaves no spec.Path (nor
// anything else).
func BuildWorkDisk(ctx context.Context, spec WorkDiskSpec) (res WorkDiskResult, err error) {
	defer func() {
		// A tree not moved into the stage is removed all the same: it was
		// handed over.
		for _, t := range spec.Trees {
			if t.Dir != "" {
				os.RemoveAll(t.Dir)
			}
		}
	}()
	if spec.Path == "" {
		return res, errors.New("work disk: no path")
	}
	if spec.SizeBytes < MinWorkDiskSize || spec.SizeBytes > model.MaxDiskBytes {
		return res, fmt.Errorf("work disk size %s is outside %s to %s",
			model.FormatSizeBytes(spec.SizeBytes), model.FormatSizeBytes(MinWorkDiskSize), model.FormatSizeBytes(model.MaxDiskBytes))
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	s, err := newStage(filepath.Dir(spec.Path))
	if err != nil {
		return res, fmt.Errorf("work disk staging: %w", err)
	}
	defer func() {
		if rmErr := s.remove(); rmErr != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("work disk staging directory %s was not removed: %v", s.dir, rmErr))
		}
	}()
	if err := s.fill(ctx, spec, &res); err != nil {
		return res, err
	}

	res.Ownership = OwnedByRoot
	if os.Geteuid() != 0 {
		res.Ownership = OwnedByUser
		if unshareWorks() {
			res.Ownership = OwnedByRootUnshare
		}
	}
	if err := makeExt4(ctx, spec.Path, spec.SizeBytes, s.dir, res.Ownership); err != nil {
		return res, err
	}
	return res, nil
}

// fill assembles the work disk's tree in the stage: the seed, the file
// sync entries in order, then the Files, and gives directories their
// final modes.
func (s *stage) fill(ctx context.Context, spec WorkDiskSpec, res *WorkDiskResult) error {
	n, warnings, err := s.copySeed(ctx, spec.SeedDir, spec.SizeBytes)
	res.CopiedBytes += n
	res.Warnings = append(res.Warnings, warnings...)
	if err != nil {
		return err
	}
	for i, se := range spec.Sync {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := planSync(i, se, spec.Home, spec.SizeBytes-res.CopiedBytes, spec.SizeBytes)
		if err != nil {
			return err
		}
		res.Warnings = append(res.Warnings, e.warnings...)
		n, err := e.apply(s)
		if e.root != nil {
			e.root.Close()
		}
		res.CopiedBytes += n
		if err != nil {
			return err
		}
	}
	for _, t := range spec.Trees {
		n, err := s.placeTree(t, spec.SizeBytes-res.CopiedBytes)
		res.CopiedBytes += n
		if err != nil {
			return err
		}
	}
	for _, f := range spec.Files {
		rel, err := guestRel(f.GuestPath)
		if err != nil {
			return fmt.Errorf("work disk file: %w", err)
		}
		mode := uint32(f.Mode.Perm())
		if mode == 0 {
			mode = 0o600
		}
		n, err := s.writeFile(rel, bytes.NewReader(f.Data), mode, 0o700, true)
		res.CopiedBytes += n
		if err != nil {
			return fmt.Errorf("work disk file %s: %w", f.GuestPath, err)
		}
	}
	return s.finish()
}

// placeTree moves t into the stage, at a path nothing else has taken.
// limit is the room left on the disk; a tree needs a tenth more than
// its content, for the file system's own blocks.
func (s *stage) placeTree(t Tree, limit int64) (int64, error) {
	rel, err := guestRel(t.GuestPath)
	if err != nil {
		return 0, fmt.Errorf("work disk tree: %w", err)
	}
	if need := t.Bytes + t.Bytes/10; need > limit {
		return 0, errdefs.Mark(errdefs.ErrInvalidArgument, fmt.Errorf("%s needs about %s and the work disk has %s left; give the VM a bigger work disk (--disk)",
			t.GuestPath, model.FormatSizeBytes(need), model.FormatSizeBytes(limit)))
	}
	if err := s.mkdirParents(rel, 0o755, false); err != nil {
		return 0, err
	}
	if _, err := os.Lstat(s.hostPath(rel)); err == nil {
		return 0, fmt.Errorf("%s exists on the work disk already (from the image's work seed or file sync); it cannot hold %s too", t.GuestPath, t.Dir)
	}
	if err := os.Rename(t.Dir, s.hostPath(rel)); err != nil {
		return 0, fmt.Errorf("work disk tree %s: %w", t.GuestPath, err)
	}
	return t.Bytes, nil
}

// makeExt4 writes the tree dir into a new ext4 image at path, through a
// temporary file renamed into place.
func makeExt4(ctx context.Context, path string, size int64, dir string, owners Ownership) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("work disk: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Truncate(size); err != nil {
		return fmt.Errorf("work disk: %w", err)
	}
	argv := append([]string{Tool("mkfs.ext4"), "-q", "-F", "-L", WorkDiskLabel}, MkfsLazyInit...)
	argv = append(argv, mkfsNoResizeInode...)
	argv = append(argv, "-d", dir, tmp.Name(), fmt.Sprintf("%dk", size/1024))
	if owners == OwnedByRootUnshare {
		argv = append([]string{"unshare", "--map-root-user"}, argv...)
	}
	if _, err := run(ctx, argv...); err != nil {
		return fmt.Errorf("work disk: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("work disk: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("work disk: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("work disk: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// copySeed copies the work seed into the stage as it is: modes
// (setuid and all), symlinks as symlinks. Other special files are
// skipped with a warning. More than limit bytes of content is an error.
func (s *stage) copySeed(ctx context.Context, seed string, limit int64) (int64, []string, error) {
	if seed == "" {
		return 0, nil, nil
	}
	fi, err := os.Stat(seed)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("work seed: %w", err)
	}
	if !fi.IsDir() {
		return 0, nil, fmt.Errorf("work seed %s is not a directory", seed)
	}
	var total int64
	var warnings []string
	err = filepath.WalkDir(seed, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(seed, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := uint32(info.Mode().Perm())
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			mode = st.Mode & 0o7777
		}
		switch {
		case info.IsDir():
			return s.ensureDir(rel, mode, true, false)
		case info.Mode().IsRegular():
			if total += info.Size(); total > limit {
				return fmt.Errorf("more than the %s work disk holds", model.FormatSizeBytes(limit))
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = s.writeFile(rel, f, mode, 0o755, false)
			return err
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return s.symlink(rel, target)
		default:
			warnings = append(warnings, fmt.Sprintf("work seed: %s is %s; skipped", p, kindOf(info.Mode())))
			return nil
		}
	})
	if err != nil {
		return total, warnings, fmt.Errorf("work seed %s: %w", seed, err)
	}
	return total, warnings, nil
}
