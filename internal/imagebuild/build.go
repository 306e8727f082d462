package imagebuild

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/disk"
	"banger/internal/guestapi"
	"banger/internal/initramfs"
	"banger/internal/kernel"
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
			err = fmt.Errorf("%w; build log: %s", err, logPath)
		}
	}()

	art = Artifacts{ArtifactDir: final, Mode: mode, Recipe: r, Mirror: r.Mirror}
	if art.Mirror == "" {
		etc := b.EtcApt
		if etc == "" {
			etc = "/etc/apt"
		}
		if art.Mirror = HostMirror(etc, r.Suite); art.Mirror == "" {
			art.Mirror = FallbackMirror
		}
	}
	if err := os.MkdirAll(b.CacheDir, 0o700); err != nil {
		return art, err
	}
	art.CachedDebs = countDebs(b.CacheDir)
	tree := filepath.Join(work, "tree")
	out := filepath.Join(work, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return art, err
	}

	rep.Stage(StageBootstrap)
	bl.printf("mirror %s, mode %s, %d packages in cache", art.Mirror, mode, art.CachedDebs)
	if err := b.bootstrap(ctx, mode, r, art.Mirror, tree, bl); err != nil {
		return art, err
	}

	rep.Stage(StageKernel)
	release, err := b.installKernel(r, tree, out, &art, bl)
	if err != nil {
		return art, err
	}

	rep.Stage(StageInitramfs)
	if err := b.buildInitramfs(r, tree, release, out, &art, bl); err != nil {
		return art, err
	}

	rep.Stage(StageCustomize)
	if err := b.customize(mode, tree, out, &art, bl); err != nil {
		return art, err
	}

	rep.Stage(StageRootfs)
	rootfs := filepath.Join(out, "rootfs.ext4")
	if err := bl.run(ctx, "", mode.inNamespace(disk.Tool("mkfs.ext4"), "-q", "-F", "-L", "banger-root", "-d", tree, rootfs, r.Size)...); err != nil {
		if strings.Contains(err.Error(), "space") || strings.Contains(err.Error(), "allocate") {
			return art, fmt.Errorf("the tree does not fit in a %s root file system; build with a bigger --size: %w", r.Size, err)
		}
		return art, fmt.Errorf("make the root file system from the tree: %w", err)
	}
	if mode == ModeUnshare {
		// Made inside the namespace: the file is ours outside too, but
		// make sure of it before the tree is gone.
		if err := os.Chmod(rootfs, 0o644); err != nil {
			return art, err
		}
	}

	art.Duration = time.Since(start)
	art.BuildLog = filepath.Join(final, "build.log")
	art.RootfsPath = filepath.Join(final, "rootfs.ext4")
	art.KernelPath = filepath.Join(final, "vmlinux")
	if art.InitrdPath != "" {
		art.InitrdPath = filepath.Join(final, "initrd.cpio")
	}
	art.WorkSeedPath = filepath.Join(final, "work-seed")
	manifest, _ := json.MarshalIndent(art, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "build.json"), manifest, 0o644); err != nil {
		return art, err
	}
	if err := os.Rename(out, final); err != nil {
		return art, err
	}
	bl.printf("done in %s", art.Duration.Round(time.Millisecond))
	logf.Close()
	if err := os.Rename(logPath, art.BuildLog); err != nil {
		return art, err
	}
	return art, nil
}

// bootstrap runs mmdebstrap into tree. The package cache is synced into
// the chroot before apt runs and back out after; essential packages are
// kept (--skip=essential/unlink) so they are cached too. update-initramfs
// is diverted to true: banger builds its own initramfs, and Debian's would
// cost half a minute and 30 MB for nothing.
//
// In unshare mode mmdebstrap maps the namespace's root to the user's
// first subordinate id, which cannot reach the user's private
// directories, so it writes a tarball (its outer process, as the user,
// does that) and the tree is unpacked inside banger's own namespace —
// `unshare --map-root-user --map-auto`, the user as root and the
// subordinate ids after it — where mkfs.ext4 later reads it the same way.
// The tar keeps numeric owners, so the two mappings need not agree.
func (b *Builder) bootstrap(ctx context.Context, mode Mode, r Recipe, mirror, tree string, bl *buildLog) error {
	if strings.ContainsAny(b.CacheDir, " \t\n'\"\\$`") {
		return fmt.Errorf("package cache path %q has characters mmdebstrap hooks cannot take", b.CacheDir)
	}
	target, format := tree, "directory"
	if mode == ModeUnshare {
		target, format = tree+".tar", "tar"
	}
	args := []string{
		"--mode=" + string(mode),
		"--variant=minbase",
		"--format=" + format,
		"--include=" + strings.Join(r.AllPackages(), ","),
		"--skip=download/empty",
		"--skip=essential/unlink",
		`--setup-hook=mkdir -p "$1"/var/cache/apt/archives/`,
		"--setup-hook=sync-in " + b.CacheDir + " /var/cache/apt/archives/",
		`--essential-hook=chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && ln -sf /bin/true "$1"/usr/sbin/update-initramfs`,
		"--customize-hook=sync-out /var/cache/apt/archives " + b.CacheDir,
		r.Suite, target, mirror,
	}
	if err := bl.run(ctx, "mmdebstrap: ", append([]string{"mmdebstrap"}, args...)...); err != nil {
		return err
	}
	if mode != ModeUnshare {
		return nil
	}
	if err := os.Mkdir(tree, 0o755); err != nil {
		return err
	}
	// Device nodes cannot be made in a user namespace; the guest mounts
	// devtmpfs on /dev anyway.
	if err := bl.run(ctx, "", mode.inNamespace("tar", "--numeric-owner", "-xpf", target, "-C", tree, "--exclude=./dev/*")...); err != nil {
		return fmt.Errorf("unpack the root file system: %w", err)
	}
	return os.Remove(target)
}

// installKernel puts the ELF vmlinux in out: extracted from the kernel
// the package installed, or from the one the recipe names. It returns the
// kernel release whose modules the tree holds ("" for a user's kernel).
func (b *Builder) installKernel(r Recipe, tree, out string, art *Artifacts, bl *buildLog) (string, error) {
	src := r.KernelPath
	release := ""
	if src == "" {
		found, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
		if len(found) != 1 {
			return "", fmt.Errorf("want one kernel in the tree's /boot, found %d (%v)", len(found), found)
		}
		src = found[0]
		release = strings.TrimPrefix(filepath.Base(src), "vmlinuz-")
	}
	dst := filepath.Join(out, "vmlinux")
	info, err := kernel.Inspect(src)
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", src, err)
	}
	if info.Format == kernel.FormatELF {
		if err := copyFile(src, dst, 0o644); err != nil {
			return "", err
		}
	} else if _, err := kernel.ExtractVmlinuxFile(src, dst); err != nil {
		return "", fmt.Errorf("kernel %s: %w", src, err)
	}
	if info, err = kernel.Inspect(dst); err != nil {
		return "", fmt.Errorf("extracted kernel: %w", err)
	}
	art.KernelVersion = info.Release
	if art.KernelVersion == "" {
		art.KernelVersion = info.Version
	}
	bl.printf("kernel %s: %s (PVH entry: %v)", src, info.Version, info.PVH)
	return release, nil
}

// buildInitramfs writes banger's initramfs when the kernel needs modules
// to reach its root disk and network; a user's kernel brings its own
// initrd or has them built in.
func (b *Builder) buildInitramfs(r Recipe, tree, release, out string, art *Artifacts, bl *buildLog) error {
	if r.KernelPath != "" {
		if r.InitrdPath != "" {
			art.InitrdPath = "initrd.cpio"
			return copyFile(r.InitrdPath, filepath.Join(out, "initrd.cpio"), 0o644)
		}
		bl.printf("user kernel without --initrd: it must have virtio and ext4 built in")
		return nil
	}
	modDir := filepath.Join(tree, "lib", "modules", release)
	mods, err := kernel.ResolveModules(modDir, kernel.DefaultGuestModules())
	if err != nil {
		return fmt.Errorf("kernel %s modules: %w", release, err)
	}
	if len(mods) == 0 {
		bl.printf("kernel %s has everything built in: no initramfs", release)
		return nil
	}
	art.Modules = mods
	f, err := os.Create(filepath.Join(out, "initrd.cpio"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := initramfs.Build(f, initramfs.Spec{Init: b.Guest.Binary, ModulesDir: modDir, Modules: mods, Release: release}); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	art.InitrdPath = "initrd.cpio"
	bl.printf("initramfs with %d modules: %s", len(mods), strings.Join(mods, " "))
	return f.Close()
}

// customize makes the tree a banger guest: the guest program and its
// unit, units masked that a microVM would only wait for, no SSH host keys
// (each VM gets its own), an empty machine-id (each boot makes one), no
// DNS server of the host's, and /root moved out as the work seed (the
// work disk is mounted there).
func (b *Builder) customize(mode Mode, tree, out string, art *Artifacts, bl *buildLog) error {
	etc := filepath.Join(tree, "etc")
	if err := copyFile(b.Guest.Binary, filepath.Join(tree, guestapi.GuestBinPath), 0o755); err != nil {
		return fmt.Errorf("install banger-guest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tree, guestapi.UnitPath), []byte(b.Guest.Unit), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, b.Guest.EnableLink)), 0o755); err != nil {
		return err
	}
	if err := replaceSymlink("../"+guestapi.UnitName, filepath.Join(tree, b.Guest.EnableLink)); err != nil {
		return err
	}
	for _, unit := range b.Guest.Mask {
		if err := replaceSymlink("/dev/null", filepath.Join(etc, "systemd", "system", unit)); err != nil {
			return err
		}
	}
	keys, _ := filepath.Glob(filepath.Join(etc, "ssh", "ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	// resolv.conf: mmdebstrap leaves the host's in the tree. A guest gets
	// the DNS server banger passes it, or none; never the host's.
	if err := os.Remove(filepath.Join(etc, "resolv.conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	files := map[string]string{
		"resolv.conf":                   "# banger-guest writes the DNS server banger passes on the kernel command line here.\n",
		"machine-id":                    "",
		"hostname":                      "banger\n",
		"fstab":                         "# / is mounted by banger's initramfs; /root (the work disk) by banger-guest.\n",
		"ssh/sshd_config.d/banger.conf": "# banger: key logins only.\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// The work seed: what /root starts with, copied onto each work disk.
	seed := filepath.Join(out, "work-seed")
	if err := os.Mkdir(seed, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(tree, "root"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(tree, "root", e.Name()), filepath.Join(seed, e.Name())); err != nil {
			return fmt.Errorf("move /root/%s to the work seed: %w", e.Name(), err)
		}
	}
	bl.printf("customized: banger-guest, %d units masked, %d host keys removed, work seed of %d entries", len(b.Guest.Mask), len(keys), len(entries))
	return nil
}

func replaceSymlink(target, link string) error {
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Symlink(target, link)
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

// isProgressLine picks the mmdebstrap lines worth showing a user: its
// phases, not the echo of banger's own hooks or its internal checks.
func isProgressLine(line string) bool {
	msg, ok := strings.CutPrefix(line, "I: ")
	if !ok {
		return false
	}
	for _, noise := range []string{"running ", "chroot architecture", "finding correct signed-by", "skipping "} {
		if strings.HasPrefix(msg, noise) {
			return false
		}
	}
	return true
}

func countDebs(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	return len(m)
}

// cancelGrace is how long a cancelled mmdebstrap gets to clean up after
// itself before it and everything it started are killed.
const cancelGrace = 10 * time.Second

// removeAll deletes a build directory without ever reaching outside it:
// mounts a killed mmdebstrap left in the tree (proc, sys, devpts) are
// detached first, and rm --one-file-system does not descend into any
// that remain. In unshare mode it runs inside the user namespace, where
// files of subordinate ids are removable (mmdebstrap's mounts there die
// with its mount namespace).
func removeAll(ctx context.Context, mode Mode, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if os.Geteuid() == 0 {
		if err := unmountUnder(dir); err != nil {
			return err
		}
	}
	argv := mode.inNamespace("rm", "-rf", "--one-file-system", dir)
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("remove %s: %v: %s", dir, err, out)
	}
	return nil
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) error {
	mounts, err := mountsUnder("/proc/self/mountinfo", dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return nil
}

// mountsUnder lists the mount points below dir in a mountinfo file,
// deepest first.
func mountsUnder(mountinfo, dir string) ([]string, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(dir) + "/"
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		if mp := unescapeMountPath(fields[4]); strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// failedLogAge is how long the log of a failed build is kept.
const failedLogAge = 7 * 24 * time.Hour

// CleanLeftovers removes the work directories of builds a dead daemon
// left behind, and the logs of failed builds older than a week.
func (b *Builder) CleanLeftovers(ctx context.Context) error {
	logs, _ := filepath.Glob(filepath.Join(b.ImagesDir, "build-*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && time.Since(fi.ModTime()) > failedLogAge {
			os.Remove(l)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(b.ImagesDir, ".build-*"))
	if len(dirs) == 0 {
		return nil
	}
	mode := ModeRoot
	if os.Geteuid() != 0 {
		mode = ModeUnshare
	}
	var errs []error
	for _, d := range dirs {
		errs = append(errs, removeAll(ctx, mode, d))
	}
	return errors.Join(errs...)
}

// buildLog writes a build's commands and their output to its log, and
// passes progress lines on to the reporter.
type buildLog struct {
	mu  sync.Mutex
	w   io.Writer
	rep Reporter
}

func (l *buildLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// run runs argv with its output in the log. Lines starting with "I: "
// (mmdebstrap's progress) become details of the current stage, prefixed
// with detailPrefix.
func (l *buildLog) run(ctx context.Context, detailPrefix string, argv ...string) error {
	l.printf("$ %s", strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On cancel, ask first: mmdebstrap traps SIGTERM, ends its phase and
	// unmounts what it mounted in the tree. If it has not exited after
	// cancelGrace, Wait kills it, and the whole group (apt, dpkg and
	// maintainer scripts) goes below; removeAll then deals with mounts
	// it left.
	cmd.Cancel = func() error { return syscall.Kill(cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = cancelGrace
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	var tail []string
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			l.printf("  %s", line)
			if detailPrefix != "" && isProgressLine(line) {
				l.rep.Detail(detailPrefix+strings.TrimPrefix(line, "I: "), -1)
			}
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	pw.Close()
	<-done
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w: %s", argv[0], err, strings.Join(tail, " | "))
	}
	return nil
}
