package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"banger/internal/errdefs"
)

// buildLFSPointer is how a Git LFS pointer file begins; a pointer is
// well under buildLFSMaxPointer bytes.
const (
	buildLFSPointer    = "version https://git-lfs.github.com/spec/v1\n"
	buildLFSMaxPointer = 1024
)

// buildCount counts the regular files and symlinks under dest and
// their apparent size into res, and the Git LFS pointer files in its
// work trees (outside any .git directory).
func buildCount(ctx context.Context, dest string, res *BuildResult) error {
	res.Files, res.Bytes, res.LFSPointers = 0, 0, 0
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t := d.Type()
		if t != 0 && t != fs.ModeSymlink {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		res.Files++
		res.Bytes += fi.Size()
		if t == 0 && fi.Size() >= int64(len(buildLFSPointer)) && fi.Size() < buildLFSMaxPointer {
			rel, _ := filepath.Rel(dest, p)
			if !strings.Contains("/"+filepath.ToSlash(rel)+"/", "/.git/") && buildIsLFSPointer(p) {
				res.LFSPointers++
			}
		}
		return nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("count the files under %s: %w", dest, errdefs.PathCause(err))
	}
	return nil
}

// buildIsLFSPointer says whether the file at p starts as a Git LFS
// pointer does.
func buildIsLFSPointer(p string) bool {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(buildLFSPointer))
	if _, err := io.ReadFull(f, head); err != nil {
		return false
	}
	return bytes.Equal(head, []byte(buildLFSPointer))
}
