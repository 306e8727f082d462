package imagebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"banger/internal/disk"
	"banger/internal/guestapi"
)

// Stages of a build, in order, as Reporter.Stage is told them.
const (
	StageBootstrap = "bootstrap"
	StageKernel    = "kernel"
	StageInitramfs = "initramfs"
	StageCustomize = "customize"
	StageRootfs    = "rootfs"
)

// Stages lists the build's stages in order.
var Stages = []string{StageBootstrap, StageKernel, StageInitramfs, StageCustomize, StageRootfs}

// Reporter receives a build's progress.
type Reporter interface {
	Stage(name string)
	Detail(msg string, frac float64)
}

// Guest is what the build installs for the guest program.
type Guest struct {
	Binary     string   // path of a static banger-guest on the host
	Unit       string   // its systemd unit, written to guestapi.UnitPath
	EnableLink string   // the symlink that enables the unit, as systemctl enable makes it
	Mask       []string // units masked for a fast microVM boot
}

// BangerGuest is the guest every banger image gets: banger-guest at
// binary on the host, its unit, enabled, and the units masked for a fast
// microVM boot.
func BangerGuest(binary string) Guest {
	return Guest{Binary: binary, Unit: guestapi.Unit, EnableLink: guestapi.UnitEnableLink, Mask: guestapi.MaskedUnitNames()}
}

// Builder builds images into a directory.
type Builder struct {
	ImagesDir string // artifacts go in ImagesDir/<id>; builds work in ImagesDir/.build-<id>
	CacheDir  string // downloaded .deb files, shared by builds
	EtcApt    string // where the host's apt sources are; "" means /etc/apt
	Guest     Guest

	mu sync.Mutex // one build at a time: they share the package cache
}

// Artifacts is what a build produced, in ArtifactDir.
type Artifacts struct {
	ArtifactDir   string        `json:"artifact_dir"`
	RootfsPath    string        `json:"rootfs_path"`
	KernelPath    string        `json:"kernel_path"`
	InitrdPath    string        `json:"initrd_path,omitempty"`
	WorkSeedPath  string        `json:"work_seed_path"`
	BuildLog      string        `json:"build_log"`
	KernelVersion string        `json:"kernel_version,omitempty"`
	Modules       []string      `json:"modules,omitempty"`
	Mirror        string        `json:"mirror"`
	Mode          Mode          `json:"mode"`
	Recipe        Recipe        `json:"recipe"`
	CachedDebs    int           `json:"cached_debs"` // .deb files in the cache before the build
	Duration      time.Duration `json:"duration_ns"`
}

// Build makes the image described by r under id. On failure or
// cancellation nothing is left but the build log, whose path the error
// names.
func (b *Builder) Build(ctx context.Context, id string, r Recipe, rep Reporter) (art Artifacts, err error) {
	r, _, err = r.Normalize()
	if err != nil {
		return Artifacts{}, err
	}
	mode, err := DetectMode(ctx)
	if err != nil {
		return Artifacts{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()

	work := filepath.Join(b.ImagesDir, ".build-"+id)
	final := filepath.Join(b.ImagesDir, id)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return Artifacts{}, err
	}
	logPath := filepath.Join(b.ImagesDir, "build-"+id+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Artifacts{}, err
	}
	defer logf.Close()
	bl := &buildLog{w: logf, rep: rep}
	bl.printf("banger image build %s (%s): %+v", r.Name, id, r)

	defer func() {
		// The tree and partial artifacts go; the log stays, and the error
		// points at it.
		if rmErr := removeAll(context.WithoutCancel(ctx), mode, work); rmErr != nil {
			bl.printf("cleanup: %v", rmErr)
		}
		if err != nil {
			bl.printf("FAILED: %v", err)
			os.RemoveAll(final)
			if hostFull(err) {
				err = fmt.Errorf("no space left on device in %s, where images are built (free some space there and build again): %w", b.ImagesDir, err)
			}
			err = fmt.Errorf("%w; build log: %s", err, logPath)
		}
	}()

	art = Artifacts{ArtifactDir: final, Mode: mode, Recipe: r, Mirror: b.mirrorFor(r)}
	if err := os.MkdirAll(b.CacheDir, 0o700); err != nil {
		return art, err
	}
	art.CachedDebs = countDebs(b.CacheDir)
	tree := filepath.Join(work, "tree")
	out := filepath.Join(work, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return art, err
	}
	if err := b.runStages(ctx, mode, r, tree, out, &art, rep, bl); err != nil {
		return art, err
	}
	art.Duration = time.Since(start)
	if err := publish(&art, out, final, logPath, logf, bl); err != nil {
		return art, err
	}
	return art, nil
}

// mirrorFor is the mirror a build of r uses: the recipe's, else the one
// the host's apt sources name for its suite, else FallbackMirror.
func (b *Builder) mirrorFor(r Recipe) string {
	mirror := r.Mirror
	if mirror == "" {
		etc := b.EtcApt
		if etc == "" {
			etc = "/etc/apt"
		}
		if mirror = HostMirror(etc, r.Suite); mirror == "" {
			mirror = FallbackMirror
		}
	}
	return mirror
}

// runStages runs the build's stages in order, telling rep of each as it
// begins: bootstrap the tree, put the kernel and initramfs in out, make
// the tree a banger guest, then make the root file system in out from
// the tree.
func (b *Builder) runStages(ctx context.Context, mode Mode, r Recipe, tree, out string, art *Artifacts, rep Reporter, bl *buildLog) error {
	rep.Stage(StageBootstrap)
	bl.printf("mirror %s, mode %s, %d packages in cache", art.Mirror, mode, art.CachedDebs)
	if err := b.bootstrap(ctx, mode, r, art.Mirror, tree, bl); err != nil {
		return err
	}

	rep.Stage(StageKernel)
	release, err := b.installKernel(r, tree, out, art, bl)
	if err != nil {
		return err
	}

	rep.Stage(StageInitramfs)
	if err := b.buildInitramfs(r, tree, release, out, art, bl); err != nil {
		return err
	}

	rep.Stage(StageCustomize)
	if err := b.customize(mode, tree, out, art, bl); err != nil {
		return err
	}

	rep.Stage(StageRootfs)
	return makeRootfs(ctx, mode, r, tree, out, bl)
}

// makeRootfs makes out/rootfs.ext4, of the recipe's size, from the tree.
func makeRootfs(ctx context.Context, mode Mode, r Recipe, tree, out string, bl *buildLog) error {
	rootfs := filepath.Join(out, "rootfs.ext4")
	if err := bl.run(ctx, "", mode.inNamespace(disk.Tool("mkfs.ext4"), "-q", "-F", "-L", "banger-root", "-d", tree, rootfs, r.Size)...); err != nil {
		if hostFull(err) {
			return fmt.Errorf("make the root file system from the tree: %w", err) // the host's disk, not --size
		}
		if strings.Contains(err.Error(), "space") || strings.Contains(err.Error(), "allocate") {
			return fmt.Errorf("the tree does not fit in a %s root file system; build with a bigger --size: %w", r.Size, err)
		}
		return fmt.Errorf("make the root file system from the tree: %w", err)
	}
	if mode == ModeUnshare {
		// Made inside the namespace: the file is ours outside too, but
		// make sure of it before the tree is gone.
		if err := os.Chmod(rootfs, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// publish gives art the artifacts' paths under final, writes it to out
// as build.json, moves out to final, then closes the build log (logf, at
// logPath) and moves it in beside them.
func publish(art *Artifacts, out, final, logPath string, logf *os.File, bl *buildLog) error {
	art.BuildLog = filepath.Join(final, "build.log")
	art.RootfsPath = filepath.Join(final, "rootfs.ext4")
	art.KernelPath = filepath.Join(final, "vmlinux")
	if art.InitrdPath != "" {
		art.InitrdPath = filepath.Join(final, "initrd.cpio")
	}
	art.WorkSeedPath = filepath.Join(final, "work-seed")
	manifest, _ := json.MarshalIndent(*art, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "build.json"), manifest, 0o644); err != nil {
		return err
	}
	if err := os.Rename(out, final); err != nil {
		return err
	}
	bl.printf("done in %s", art.Duration.Round(time.Millisecond))
	logf.Close()
	return os.Rename(logPath, art.BuildLog)
}

// hostFull reports a failure for want of room on the host's file
// system: ENOSPC from banger's own writes, or the tools' own words for
// it (mmdebstrap, tar and mkfs print strerror).
func hostFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "No space left on device")
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func countDebs(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	return len(m)
}
