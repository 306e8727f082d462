package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyChunk is how much is copied between two looks at the context, so
// a cancelled copy stops within a few milliseconds.
const copyChunk = 8 << 20

// zeroBlock is the granularity at which copyBlocks looks for zeros: the
// file system block size of every file system banger runs on.
const zeroBlock = 4096

// copySparse copies the size bytes of in to out, which must be empty,
// writing only what in has data for: the extents SEEK_DATA and SEEK_HOLE
// report. Holes are never read, and stay holes in out. Where the file
// system cannot report extents, copyBlocks reads everything and skips
// all-zero blocks instead.
func copySparse(ctx context.Context, in, out *os.File, size int64) error {
	if err := out.Truncate(size); err != nil {
		return err
	}
	fd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole after off
		}
		if err != nil {
			if off == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
				return copyBlocks(ctx, in, out, size)
			}
			return fmt.Errorf("seek data: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole: %w", err)
		}
		hole = min(hole, size)
		if err := copyRange(ctx, in, out, data, hole); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

// copyRange copies bytes [from, to) of in to the same offsets of out,
// in the kernel (copy_file_range) where it can, with read and write
// otherwise.
func copyRange(ctx context.Context, in, out *os.File, from, to int64) error {
	inFd, outFd := int(in.Fd()), int(out.Fd())
	for roff, woff := from, from; roff < to; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := unix.CopyFileRange(inFd, &roff, outFd, &woff, int(min(copyChunk, to-roff)), 0)
		switch {
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
			return copyRangeRW(ctx, in, out, roff, to)
		case err != nil:
			return fmt.Errorf("copy_file_range: %w", err)
		case n == 0:
			return fmt.Errorf("source ended at %d, before %d: it changed during the copy", roff, to)
		}
	}
	return nil
}

// copyRangeRW is copyRange through a buffer.
func copyRangeRW(ctx context.Context, in, out *os.File, from, to int64) error {
	buf := make([]byte, min(copyChunk, to-from))
	for off := from; off < to; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := in.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		if n > 0 {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err == io.EOF && off < to {
			return fmt.Errorf("source ended at %d, before %d: it changed during the copy", off, to)
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// copyBlocks copies in to out, which is already size bytes of hole,
// reading every block and writing only those that are not all zeros.
func copyBlocks(ctx context.Context, in, out *os.File, size int64) error {
	buf := make([]byte, copyChunk)
	zero := make([]byte, zeroBlock)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := in.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && err != io.EOF {
			return err
		}
		if n == 0 {
			return fmt.Errorf("source ended at %d, before %d: it changed during the copy", off, size)
		}
		// Write each run of non-zero blocks with one call.
		chunk := buf[:n]
		for start := 0; start < len(chunk); {
			end := min(start+zeroBlock, len(chunk))
			if bytes.Equal(chunk[start:end], zero[:end-start]) {
				start = end
				continue
			}
			runEnd := end
			for runEnd < len(chunk) {
				next := min(runEnd+zeroBlock, len(chunk))
				if bytes.Equal(chunk[runEnd:next], zero[:next-runEnd]) {
					break
				}
				runEnd = next
			}
			if _, err := out.WriteAt(chunk[start:runEnd], off+int64(start)); err != nil {
				return err
			}
			start = runEnd
		}
		off += int64(n)
	}
	return nil
}
