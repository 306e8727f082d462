// Package hostdisk makes block devices for banger-helper: loop devices
// over files the helper was handed open, and device-mapper snapshots
// over those. It runs as root inside banger-helper and nowhere else
// (internal/deptest keeps it so), and decides nothing about who asks:
// the helper checks the caller, the files and the names first.
package hostdisk

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Loop is a loop device the caller holds open. Attached with autoclear,
// it detaches itself when its last user closes it: once device-mapper
// holds it, closing Dev leaves it to the snapshot's lifetime; if the
// helper dies before that, the kernel's close detaches it.
type Loop struct {
	Dev  *os.File
	Path string // /dev/loopN
}

// Close drops the caller's hold on the device.
func (l *Loop) Close() error { return l.Dev.Close() }

// AttachLoop attaches backing to a free loop device (autoclear, and
// read-only when asked) and returns it open.
func AttachLoop(backing *os.File, readOnly bool) (*Loop, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loop devices: %w", err)
	}
	defer ctl.Close()
	flags := uint32(unix.LO_FLAGS_AUTOCLEAR)
	mode := os.O_RDWR
	if readOnly {
		flags |= unix.LO_FLAGS_READ_ONLY
		mode = os.O_RDONLY
	}
	// Another process may take the free device between asking for it
	// and configuring it (EBUSY); ask again.
	var lastErr error
	for range 8 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("find a free loop device: %w", err)
		}
		path := "/dev/loop" + strconv.Itoa(n)
		dev, err := os.OpenFile(path, mode|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		err = configure(dev, backing, flags)
		if err == nil {
			return &Loop{Dev: dev, Path: path}, nil
		}
		dev.Close()
		if !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("attach %s: %w", path, err)
		}
		lastErr = err
	}
	return nil, fmt.Errorf("attach a loop device: every free one was taken first: %w", lastErr)
}

// configure attaches backing with LOOP_CONFIGURE (Linux 5.8), or with
// LOOP_SET_FD and LOOP_SET_STATUS64 on older kernels.
func configure(dev, backing *os.File, flags uint32) error {
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
	cfg.Info.Flags = flags
	copy(cfg.Info.File_name[:], backing.Name())
	err := unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
		return err
	}
	if err := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_SET_FD, int(backing.Fd())); err != nil {
		return err
	}
	info := cfg.Info
	if err := unix.IoctlLoopSetStatus64(int(dev.Fd()), &info); err != nil {
		unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

// Attached reports whether the loop device at path has a backing file.
func Attached(path string) (bool, error) {
	dev, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer dev.Close()
	_, err = unix.IoctlLoopGetStatus64(int(dev.Fd()))
	if errors.Is(err, unix.ENXIO) {
		return false, nil
	}
	return err == nil, err
}

// Sectors is the size of the block device open as dev, in 512-byte
// sectors.
func Sectors(dev *os.File) (uint64, error) {
	var size uint64
	if err := ioctlPtr(dev, unix.BLKGETSIZE64, &size); err != nil {
		return 0, fmt.Errorf("size of %s: %w", dev.Name(), err)
	}
	return size / 512, nil
}

// DevNumber is the "major:minor" of the block device open as dev.
func DevNumber(dev *os.File) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(dev.Fd()), &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("%s is not a block device", dev.Name())
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
}
