package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Offsets in the x86 boot protocol's setup header
// (Documentation/arch/x86/boot.rst), counted from the start of the file.
const (
	offSetupSects    = 0x1f1
	offHeaderMagic   = 0x202
	offProtocol      = 0x206
	offKernelVersion = 0x20e
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
	setupHeaderEnd   = 0x250

	// minProtocol is the first boot protocol version whose header says
	// where the compressed payload is (payload_offset, payload_length).
	minProtocol = 0x0208
)

// ErrNotBzImage is wrapped by errors about a file that is not an x86
// bzImage at all (as opposed to a bzImage banger cannot use).
var ErrNotBzImage = errors.New("not a bzImage")

// bzHeader is what banger needs from a bzImage's setup header.
type bzHeader struct {
	protocol     uint16
	payloadStart int64 // absolute offset in the file
	payloadLen   int64
	version      string // kernel_version string; "" when absent
}

// protocolString renders a boot protocol version as the documentation
// writes it: 0x020f is "2.15".
func protocolString(v uint16) string {
	return fmt.Sprintf("%d.%02d", v>>8, v&0xff)
}

// readBzHeader parses and bounds-checks the setup header of the bzImage
// in r, which is size bytes long.
func readBzHeader(r io.ReaderAt, size int64) (bzHeader, error) {
	buf := make([]byte, setupHeaderEnd)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return bzHeader{}, fmt.Errorf("read setup header: %w", err)
	}
	buf = buf[:n]
	if len(buf) < offHeaderMagic+4 || string(buf[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return bzHeader{}, fmt.Errorf("%w: no HdrS magic at 0x202", ErrNotBzImage)
	}
	if len(buf) < offProtocol+2 {
		return bzHeader{}, fmt.Errorf("truncated bzImage: setup header cut off after %d bytes", len(buf))
	}
	h := bzHeader{protocol: binary.LittleEndian.Uint16(buf[offProtocol:])}
	if h.protocol < minProtocol {
		return bzHeader{}, fmt.Errorf("boot protocol %s too old: banger needs %s or later, which says where the payload is",
			protocolString(h.protocol), protocolString(minProtocol))
	}
	if len(buf) < setupHeaderEnd {
		return bzHeader{}, fmt.Errorf("truncated bzImage: setup header cut off after %d bytes", len(buf))
	}

	setupSects := int64(buf[offSetupSects])
	if setupSects == 0 {
		setupSects = 4 // the boot protocol's historical default
	}
	protectedMode := (setupSects + 1) * 512
	h.payloadStart = protectedMode + int64(binary.LittleEndian.Uint32(buf[offPayloadOffset:]))
	h.payloadLen = int64(binary.LittleEndian.Uint32(buf[offPayloadLength:]))
	if h.payloadLen == 0 {
		return bzHeader{}, errors.New("bzImage header gives an empty payload (payload_length 0)")
	}
	if end := h.payloadStart + h.payloadLen; end > size {
		return bzHeader{}, fmt.Errorf("truncated bzImage: payload ends at byte %d but the file has %d", end, size)
	}

	// kernel_version points at a NUL-terminated string, relative to
	// the end of the boot sector.
	if p := int64(binary.LittleEndian.Uint16(buf[offKernelVersion:])); p != 0 {
		h.version = readCString(r, p+0x200, 256)
	}
	return h, nil
}

// readCString reads a NUL- or newline-terminated string of at most max
// bytes at off; it returns "" when there is none.
func readCString(r io.ReaderAt, off int64, max int) string {
	buf := make([]byte, max)
	n, _ := r.ReadAt(buf, off)
	buf = buf[:n]
	if i := bytes.IndexAny(buf, "\x00\n"); i >= 0 {
		buf = buf[:i]
	}
	return string(bytes.TrimSpace(buf))
}
