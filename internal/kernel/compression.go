package kernel

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Compression is how a bzImage's payload is compressed.
type Compression string

// The compressions a Linux x86 bzImage can use. banger decompresses
// gzip, xz and zstd; the others are recognised so that the error can say
// what the kernel uses.
const (
	CompressionNone    Compression = "" // an ELF vmlinux
	CompressionGzip    Compression = "gzip"
	CompressionXZ      Compression = "xz"
	CompressionZstd    Compression = "zstd"
	CompressionLZMA    Compression = "lzma"
	CompressionBzip2   Compression = "bzip2"
	CompressionLZ4     Compression = "lz4"
	CompressionLZO     Compression = "lzo"
	CompressionUnknown Compression = "unknown"
)

// Supported reports whether banger can decompress c.
func (c Compression) Supported() bool {
	return c == CompressionGzip || c == CompressionXZ || c == CompressionZstd
}

// compressionMagics are the leading bytes of each format, as the
// kernel's own lib/decompress.c recognises them.
var compressionMagics = []struct {
	magic []byte
	c     Compression
}{
	{[]byte{0x1f, 0x8b}, CompressionGzip},
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, CompressionXZ},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, CompressionZstd},
	{[]byte{0x5d, 0x00, 0x00}, CompressionLZMA},
	{[]byte{'B', 'Z', 'h'}, CompressionBzip2},
	{[]byte{0x02, 0x21, 0x4c, 0x18}, CompressionLZ4}, // legacy frame, as the kernel writes it
	{[]byte{0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a}, CompressionLZO},
}

// detectCompression names the compression of data by its magic, or
// returns CompressionUnknown.
func detectCompression(data []byte) Compression {
	for _, m := range compressionMagics {
		if bytes.HasPrefix(data, m.magic) {
			return m.c
		}
	}
	return CompressionUnknown
}

// unsupportedError explains a payload banger cannot decompress.
func unsupportedError(c Compression, payload []byte) error {
	if c == CompressionUnknown {
		head := payload[:min(len(payload), 8)]
		return fmt.Errorf("bzImage payload compression not recognised (starts % x); banger supports gzip, xz and zstd", head)
	}
	return fmt.Errorf("bzImage payload is %s-compressed; banger supports gzip, xz and zstd", c)
}

// maxVmlinuxSize bounds what a payload may decompress to, so that a
// hostile image cannot fill the disk or the memory. Debian's vmlinux is
// ~66 MB.
const maxVmlinuxSize = 1 << 30

// decompressStream writes the first c-compressed stream in payload to
// w. Whatever follows the stream (the kernel build appends the
// uncompressed size; a file may be padded) is ignored. A stream that
// decompresses to more than limit bytes is an error, and no decoder
// allocates more than about limit for its window or dictionary.
func decompressStream(c Compression, payload []byte, w io.Writer, limit int64) error {
	tooBig := fmt.Errorf("decompress %s payload: more than %d bytes", c, limit)
	var r io.Reader
	switch c {
	case CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("gzip payload: %w", err)
		}
		zr.Multistream(false)
		r = zr
	case CompressionXZ:
		n, err := xzStreamLen(payload)
		if err != nil {
			return err
		}
		// decodeXZ checks the size against limit itself.
		return decodeXZ(payload[:n], w, limit)
	case CompressionZstd:
		n, err := zstdFrameLen(payload)
		if err != nil {
			return err
		}
		// WithDecoderMaxMemory also caps the window the frame header
		// asks for, which the decoder would otherwise allocate up to
		// 512 MiB of.
		zr, err := zstd.NewReader(bytes.NewReader(payload[:n]), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return fmt.Errorf("zstd payload: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return unsupportedError(c, payload)
	}
	n, err := io.Copy(w, io.LimitReader(r, limit))
	if err == nil && n == limit {
		// Stopped at the limit: one byte more means too big, and the
		// end of the stream is where gzip and zstd check their sums.
		var one [1]byte
		var m int
		if m, err = io.ReadFull(r, one[:]); m > 0 {
			return tooBig
		}
	}
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return tooBig
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("decompress %s payload: %w", c, err)
	}
	return nil
}

// xzStreamLen returns the length of the xz stream at the start of p.
//
// A kernel payload carries a 4-byte size after its stream, and the file
// may go on after that, so the stream's end has to be found before its
// index and footer can be read. The 12-byte footer repeats the header's
// flags, ends in "YZ", and is protected by a CRC32, as is the index
// before it; checking both CRCs makes a false match in compressed data
// vanishingly unlikely.
func xzStreamLen(p []byte) (int, error) {
	const headerLen, footerLen = 12, 12
	if len(p) < headerLen+footerLen {
		return 0, errors.New("xz payload: truncated")
	}
	flags := p[6:8]
	if crc32.ChecksumIEEE(flags) != binary.LittleEndian.Uint32(p[8:12]) {
		return 0, errors.New("xz payload: stream header CRC mismatch")
	}
	for off := headerLen; ; {
		i := bytes.Index(p[off:], []byte("YZ"))
		if i < 0 {
			break
		}
		end := off + i + 2
		off += i + 1
		// Streams are a multiple of 4 bytes long.
		if end%4 != 0 || end < headerLen+footerLen {
			continue
		}
		f := p[end-footerLen : end]
		if !bytes.Equal(f[8:10], flags) || crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[0:4]) {
			continue
		}
		indexLen := (int64(binary.LittleEndian.Uint32(f[4:8])) + 1) * 4
		indexStart := int64(end-footerLen) - indexLen
		if indexStart < headerLen || p[indexStart] != 0 {
			continue
		}
		index := p[indexStart : end-footerLen]
		if crc32.ChecksumIEEE(index[:len(index)-4]) != binary.LittleEndian.Uint32(index[len(index)-4:]) {
			continue
		}
		return end, nil
	}
	return 0, errors.New("xz payload: no end of stream found (truncated?)")
}

// zstdFrameLen returns the length of the zstd frame at the start of p by
// walking its block headers (RFC 8878, section 3.1.1): the decoder would
// take the bytes after the frame for another frame and fail on them.
func zstdFrameLen(p []byte) (int, error) {
	truncated := errors.New("zstd payload: truncated frame")
	if len(p) < 5 {
		return 0, truncated
	}
	fhd := p[4]
	if fhd&0x08 != 0 {
		return 0, errors.New("zstd payload: reserved bit set in frame header")
	}
	singleSegment := fhd&0x20 != 0
	off := 5
	if !singleSegment {
		off++ // window descriptor
	}
	off += [4]int{0, 1, 2, 4}[fhd&0x03] // dictionary ID
	fcs := [4]int{0, 2, 4, 8}[fhd>>6]   // frame content size
	if fcs == 0 && singleSegment {
		fcs = 1
	}
	off += fcs
	for {
		if off+3 > len(p) {
			return 0, truncated
		}
		bh := uint32(p[off]) | uint32(p[off+1])<<8 | uint32(p[off+2])<<16
		off += 3
		last := bh&1 != 0
		switch blockType := (bh >> 1) & 0x03; blockType {
		case 0, 2: // raw, compressed
			off += int(bh >> 3)
		case 1: // RLE: one byte repeated
			off++
		default:
			return 0, errors.New("zstd payload: reserved block type")
		}
		if off > len(p) {
			return 0, truncated
		}
		if last {
			break
		}
	}
	if fhd&0x04 != 0 { // content checksum
		off += 4
	}
	if off > len(p) {
		return 0, truncated
	}
	return off, nil
}
