package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"banger/internal/errdefs"
)

// overlayWorkTree makes each path git status listed in Dest's work tree
// what it is in the host's: a file with its content and permission
// bits, a symlink as a symlink (never followed), or nothing. Every
// write goes through an os.Root on Dest and every read through one on
// the host's work tree, so no path, and no symlink in either tree,
// leads outside them. What is removed or changes type goes first, so a
// path whose parent was a symlink and is now a directory can be
// written.
func (b *builder) overlayWorkTree(ctx context.Context) error {
	host, err := os.OpenRoot(b.repo.Root)
	if err != nil {
		return fmt.Errorf("open the work tree %s: %w", b.repo.Root, errdefs.PathCause(err))
	}
	defer host.Close()
	dest, err := os.OpenRoot(b.opts.Dest)
	if err != nil {
		return fmt.Errorf("open the destination %s: %w", b.opts.Dest, errdefs.PathCause(err))
	}
	defer dest.Close()
	type item struct {
		path string
		fi   fs.FileInfo // the host's; nil when the host has nothing there
	}
	var items []item
	for _, e := range b.changes {
		paths := []string{e.path}
		if e.orig != "" {
			paths = append(paths, e.orig)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, "/") {
				b.warn("%s is an untracked git repository inside the work tree; not copied", p)
				continue
			}
			fi, err := overlayLstat(host, p)
			if err != nil {
				return fmt.Errorf("read %s in %s: %w", p, b.repo.Root, errdefs.PathCause(err))
			}
			if fi != nil && fi.IsDir() && e.gitlink() {
				continue // a submodule: see submodules
			}
			items = append(items, item{p, fi})
		}
	}
	for _, it := range items {
		if err := overlayClear(dest, it.path, it.fi); err != nil {
			return err
		}
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.overlayPut(ctx, host, dest, it.path, it.fi); err != nil {
			return err
		}
	}
	return nil
}

// overlayLstat is the file at p, its last element not followed, or nil
// when there is none. A path below a symlink is none: git does not look
// through symlinks, and neither does the overlay.
func overlayLstat(root *os.Root, p string) (fs.FileInfo, error) {
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		fi, err := root.Lstat(strings.Join(parts[:i], "/"))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || (err == nil && !fi.IsDir()) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	fi, err := root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	return fi, err
}

// overlayClear removes what Dest has at p when the host has nothing
// there or something of another type.
func overlayClear(dest *os.Root, p string, host fs.FileInfo) error {
	have, err := overlayLstat(dest, p)
	if err != nil || have == nil {
		return err
	}
	if host != nil && have.Mode().Type() == host.Mode().Type() {
		return nil
	}
	if err := dest.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s from the destination: %w", p, errdefs.PathCause(err))
	}
	return nil
}

// overlayPut writes the host's file at p into Dest.
func (b *builder) overlayPut(ctx context.Context, host, dest *os.Root, p string, fi fs.FileInfo) error {
	if fi == nil || fi.IsDir() {
		return nil // removed already; a directory comes with its files
	}
	switch fi.Mode().Type() {
	case 0, fs.ModeSymlink:
	default:
		b.warn("%s is a %s on the host, not a file or symlink; not copied", p, overlayKind(fi.Mode()))
		return nil
	}
	if err := overlayParents(dest, p); err != nil {
		return err
	}
	if err := dest.RemoveAll(p); err != nil {
		return fmt.Errorf("replace %s in the destination: %w", p, errdefs.PathCause(err))
	}
	if fi.Mode().Type() == fs.ModeSymlink {
		target, err := host.Readlink(p)
		if err != nil {
			return fmt.Errorf("read the symlink %s in %s: %w", p, b.repo.Root, errdefs.PathCause(err))
		}
		if err := dest.Symlink(target, p); err != nil {
			return fmt.Errorf("make the symlink %s in the destination: %w", p, errdefs.PathCause(err))
		}
		b.wrote(1, int64(len(target)))
		return nil
	}
	return b.overlayCopyFile(ctx, host, dest, p)
}

// overlayCopyFile copies a regular file with its permission bits.
func (b *builder) overlayCopyFile(ctx context.Context, host, dest *os.Root, p string) error {
	in, err := host.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("read %s in %s: %w", p, b.repo.Root, errdefs.PathCause(err))
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("read %s in %s: %w", p, b.repo.Root, errdefs.PathCause(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s in %s changed while it was copied; try again", p, b.repo.Root)
	}
	out, err := dest.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s in the destination: %w", p, errdefs.PathCause(err))
	}
	_, err = io.Copy(out, &overlayReader{ctx: ctx, r: in, b: b})
	if err == nil {
		err = out.Chmod(fi.Mode().Perm()) // exactly the host's, whatever the umask
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("copy %s into the destination: %w", p, errdefs.PathCause(err))
	}
	b.wrote(1, 0)
	return nil
}

// overlayParents makes each directory above p in Dest a real directory:
// what the overlay writes never passes through a symlink or a file
// there (the host's path has none either, or overlayLstat would have
// found nothing).
func overlayParents(dest *os.Root, p string) error {
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		fi, err := dest.Lstat(dir)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			if err := dest.RemoveAll(dir); err != nil {
				return fmt.Errorf("replace %s in the destination with a directory: %w", dir, errdefs.PathCause(err))
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("read %s in the destination: %w", dir, errdefs.PathCause(err))
		}
		if err := dest.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("make the directory %s in the destination: %w", dir, errdefs.PathCause(err))
		}
	}
	return nil
}

// overlayKind names a file type for a warning.
func overlayKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// overlayReader stops a copy when ctx is cancelled and counts its
// bytes as they go, so a big file shows progress before it is whole.
type overlayReader struct {
	ctx context.Context
	r   io.Reader
	b   *builder
}

func (o *overlayReader) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := o.r.Read(p)
	o.b.wrote(0, int64(n))
	return n, err
}
