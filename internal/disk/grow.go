package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"banger/internal/model"
)

// ErrShrink is returned, wrapped, when a disk is asked to become smaller:
// ext4 images are only ever grown, since shrinking one needs the data
// moved and can fail half way.
var ErrShrink = errors.New("shrinking is not supported")

// Grow makes the ext4 image file at path size bytes and its file system
// fill it, without writing data: the file is extended with a hole, then
// e2fsck -fy (resize2fs requires a freshly checked file system) and
// resize2fs grow the file system in place. Neither needs root on an
// image file. It is a no-op when the file and its file system are
// already that size, and safe to repeat after a failure; a smaller size
// is refused with ErrShrink.
func Grow(ctx context.Context, path string, size int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("grow: %w", err)
	}
	sb, err := readSuperblock(path)
	if err != nil {
		return fmt.Errorf("grow %s: %w", path, err)
	}
	fsBytes := sb.blockCount * sb.blockSize
	if size < fi.Size() || size < fsBytes {
		return fmt.Errorf("grow %s to %d bytes: it is %d bytes already, and %w", path, size, max(fi.Size(), fsBytes), ErrShrink)
	}
	// resize2fs fills the file with whole blocks, so a size that is not
	// a multiple of the block size leaves a tail the file system never
	// covers.
	if size == fi.Size() && fsBytes == size/sb.blockSize*sb.blockSize {
		return nil
	}
	if size > fi.Size() {
		if err := os.Truncate(path, size); err != nil {
			return fmt.Errorf("grow: %w", err)
		}
	}
	if err := fsck(ctx, path); err != nil {
		return fmt.Errorf("grow %s: %w", path, err)
	}
	if _, err := run(ctx, "resize2fs", path); err != nil {
		return fmt.Errorf("grow %s: %w", path, err)
	}
	return nil
}

// GrowWorkDisk grows a VM's work disk to newSize bytes (`vm set
// --work-disk-size`). Asking for less than it has is an error that says
// work disks only grow, and wraps ErrShrink.
func GrowWorkDisk(ctx context.Context, path string, newSize int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("grow work disk: %w", err)
	}
	if newSize < fi.Size() {
		return fmt.Errorf("work disk is %s; asked for %s, but work disks only grow: %w",
			model.FormatSizeBytes(fi.Size()), model.FormatSizeBytes(newSize), ErrShrink)
	}
	if err := Grow(ctx, path, newSize); err != nil {
		if errors.Is(err, ErrShrink) {
			return fmt.Errorf("work disks only grow: %w", err)
		}
		return fmt.Errorf("grow work disk: %w", err)
	}
	return nil
}

// fsck checks and repairs the file system in the image file at path.
// e2fsck exits 1 when it corrected something, which is success here.
func fsck(ctx context.Context, path string) error {
	_, err := run(ctx, "e2fsck", "-fy", path)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return nil
	}
	return err
}

// superblock is the part of an ext4 superblock Grow reads.
type superblock struct {
	blockSize  int64
	blockCount int64
}

// ext4 superblock layout (fs/ext4/ext4.h): it starts 1024 bytes into the
// file system.
const (
	sbOffset        = 1024
	sbBlocksCountLo = 0x04
	sbLogBlockSize  = 0x18
	sbMagic         = 0x38
	sbFeatIncompat  = 0x60
	sbBlocksCountHi = 0x150
	sbSize          = 0x154
	ext4Magic       = 0xEF53
	incompat64Bit   = 0x80
)

// readSuperblock reads the block size and count of the ext2/3/4 file
// system in the image at path, without running anything.
func readSuperblock(path string) (superblock, error) {
	f, err := os.Open(path)
	if err != nil {
		return superblock{}, err
	}
	defer f.Close()
	buf := make([]byte, sbSize)
	if _, err := f.ReadAt(buf, sbOffset); err != nil {
		if errors.Is(err, io.EOF) {
			return superblock{}, errors.New("not an ext4 file system (too small)")
		}
		return superblock{}, err
	}
	le := binary.LittleEndian
	if le.Uint16(buf[sbMagic:]) != ext4Magic {
		return superblock{}, errors.New("not an ext4 file system (no superblock magic)")
	}
	logSize := le.Uint32(buf[sbLogBlockSize:])
	if logSize > 6 {
		return superblock{}, fmt.Errorf("not an ext4 file system (block size 1024<<%d)", logSize)
	}
	count := int64(le.Uint32(buf[sbBlocksCountLo:]))
	if le.Uint32(buf[sbFeatIncompat:])&incompat64Bit != 0 {
		count |= int64(le.Uint32(buf[sbBlocksCountHi:])) << 32
	}
	return superblock{blockSize: 1024 << logSize, blockCount: count}, nil
}
