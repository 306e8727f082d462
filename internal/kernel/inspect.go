package kernel

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Format is the container a kernel file is in.
type Format string

const (
	// FormatELF is an uncompressed vmlinux.
	FormatELF Format = "elf"
	// FormatBzImage is an x86 boot image with a compressed vmlinux
	// inside (Debian's /boot/vmlinuz-*).
	FormatBzImage Format = "bzImage"
)

// ErrNotKernel is wrapped by Inspect's error for a file that is neither
// kind of kernel.
var ErrNotKernel = errors.New("not an x86-64 ELF kernel or bzImage")

// Info describes a kernel file.
type Info struct {
	Format Format
	// Compression is the payload's compression for a bzImage;
	// CompressionNone for an ELF.
	Compression Compression
	// BootProtocol is a bzImage's boot protocol version (0x020f is
	// 2.15); 0 for an ELF.
	BootProtocol uint16
	// PVH is set for an ELF that carries a Xen PHYS32_ENTRY note, the
	// PVH entry point QEMU needs to boot it directly; PVHEntry is that
	// entry's physical address. A bzImage's vmlinux may carry one too:
	// extract it and inspect the result to find out.
	PVH      bool
	PVHEntry uint64
	// Version is the kernel's build description, e.g.
	// "6.1.0-50-amd64 (debian-kernel@lists.debian.org) ... #1 SMP ...",
	// and Release its first word, the directory name under
	// /lib/modules. Both are "" when the file does not say.
	Version string
	Release string
}

// Inspect classifies the kernel file at path.
func Inspect(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	info, err := inspect(f, st.Size())
	if err != nil {
		return Info{}, fmt.Errorf("inspect kernel %s: %w", path, err)
	}
	return info, nil
}

func inspect(r io.ReaderAt, size int64) (Info, error) {
	head := make([]byte, setupHeaderEnd)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Info{}, err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		return inspectELF(r, size, head)
	case len(head) >= offHeaderMagic+4 && string(head[offHeaderMagic:offHeaderMagic+4]) == "HdrS":
		return inspectBzImage(r, size)
	}
	return Info{}, ErrNotKernel
}

func inspectELF(r io.ReaderAt, size int64, head []byte) (Info, error) {
	if err := checkELFHeader(head); err != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrNotKernel, err)
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrNotKernel, err)
	}
	info := Info{Format: FormatELF}
	info.PVHEntry, info.PVH = findPVHEntry(f)
	info.setVersion(findBanner(r, size))
	return info, nil
}

func inspectBzImage(r io.ReaderAt, size int64) (Info, error) {
	h, err := readBzHeader(r, size)
	if err != nil {
		return Info{}, err
	}
	magic := make([]byte, 16)
	n, err := r.ReadAt(magic[:min(int64(len(magic)), h.payloadLen)], h.payloadStart)
	if err != nil && !errors.Is(err, io.EOF) {
		return Info{}, fmt.Errorf("read bzImage payload: %w", err)
	}
	info := Info{
		Format:       FormatBzImage,
		Compression:  detectCompression(magic[:n]),
		BootProtocol: h.protocol,
	}
	info.setVersion(h.version)
	return info, nil
}

func (i *Info) setVersion(v string) {
	i.Version = v
	i.Release, _, _ = strings.Cut(v, " ")
}
