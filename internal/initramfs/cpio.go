package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// The newc format (the kernel's Documentation/driver-api/early-userspace/
// buffer-format.rst): each entry is a 110-byte ASCII header, the name
// with its NUL, padding to a multiple of 4, the data, padding to a
// multiple of 4. The archive ends with an entry named TRAILER!!!.
const (
	newcMagic     = "070701"
	newcCRCMagic  = "070702" // same layout; the check field is not verified
	newcHeaderLen = 110
	trailerName   = "TRAILER!!!"
	// maxNameLen is the kernel's PATH_MAX, which its unpacker enforces.
	maxNameLen = 4096
	// maxEntrySize is what the 8-hex-digit size field can hold.
	maxEntrySize = 1<<32 - 1
)

// st_mode file type bits, as stored in the header's mode field.
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// Header is one archive entry.
type Header struct {
	// Name is the entry's path, without a leading '/'.
	Name string
	// Mode holds the entry's type (fs.ModeDir, fs.ModeSymlink,
	// fs.ModeDevice|fs.ModeCharDevice, ...) and permission bits.
	Mode     fs.FileMode
	UID, GID uint32
	// Size is the length of a regular file's data.
	Size int64
	// Linkname is a symlink's target.
	Linkname string
	// Major and Minor are a device node's device number.
	Major, Minor uint32
	Ino          uint32
	NLink        uint32
	ModTime      uint32 // seconds since the Unix epoch
}

// unixMode converts an fs.FileMode to the st_mode the archive stores.
func unixMode(m fs.FileMode) (uint32, error) {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	switch m.Type() {
	case 0:
		u |= sIFREG
	case fs.ModeDir:
		u |= sIFDIR
	case fs.ModeSymlink:
		u |= sIFLNK
	case fs.ModeDevice | fs.ModeCharDevice:
		u |= sIFCHR
	case fs.ModeDevice:
		u |= sIFBLK
	case fs.ModeNamedPipe:
		u |= sIFIFO
	case fs.ModeSocket:
		u |= sIFSOCK
	default:
		return 0, fmt.Errorf("file mode %v has no cpio equivalent", m)
	}
	return u, nil
}

// fileMode converts a stored st_mode to an fs.FileMode.
func fileMode(u uint32) (fs.FileMode, error) {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch u & sIFMT {
	case sIFREG:
	case sIFDIR:
		m |= fs.ModeDir
	case sIFLNK:
		m |= fs.ModeSymlink
	case sIFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case sIFBLK:
		m |= fs.ModeDevice
	case sIFIFO:
		m |= fs.ModeNamedPipe
	case sIFSOCK:
		m |= fs.ModeSocket
	default:
		return 0, fmt.Errorf("mode %#o has an unknown file type", u)
	}
	return m, nil
}

// cleanName turns a path as callers write it ("/etc/banger/x",
// "etc//banger/x") into the form the archive stores ("etc/banger/x").
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("cpio entry name %q holds a NUL byte", name)
	}
	clean := path.Clean("/" + name)[1:]
	if clean == "" {
		return "", errors.New("cpio entry name is empty or the root directory")
	}
	if len(clean)+1 > maxNameLen {
		return "", fmt.Errorf("cpio entry name %.40q... is longer than %d bytes", clean, maxNameLen-1)
	}
	if clean == trailerName {
		return "", fmt.Errorf("cpio entry name %q is reserved for the end of the archive", clean)
	}
	return clean, nil
}

// padLen is how many zero bytes bring n up to a multiple of 4.
func padLen(n int64) int64 {
	return (4 - n%4) % 4
}
