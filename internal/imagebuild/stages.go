package imagebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/initramfs"
	"banger/internal/kernel"
)

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
