package kernel

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ExtractVmlinux writes the ELF vmlinux inside the x86 bzImage in r
// (size bytes long) to w, and returns the compression the payload used.
// Nothing reaches w until the decompressed data is known to start with
// an x86-64 ELF header; after that, an error can leave w holding part of
// the kernel.
func ExtractVmlinux(r io.ReaderAt, size int64, w io.Writer) (Compression, error) {
	return extractVmlinux(r, size, w, maxVmlinuxSize)
}

// extractVmlinux is ExtractVmlinux with limit the most the payload may
// decompress to: maxVmlinuxSize for a real kernel, far less in the
// tests and the fuzz target, which go through the same decoders.
func extractVmlinux(r io.ReaderAt, size int64, w io.Writer, limit int64) (Compression, error) {
	h, err := readBzHeader(r, size)
	if err != nil {
		return CompressionNone, err
	}
	payload := make([]byte, h.payloadLen)
	if _, err := r.ReadAt(payload, h.payloadStart); err != nil {
		return CompressionNone, fmt.Errorf("read bzImage payload: %w", err)
	}
	c := detectCompression(payload)
	if !c.Supported() {
		return c, unsupportedError(c, payload)
	}
	ew := &elfCheckWriter{w: w}
	if err := decompressStream(c, payload, ew, limit); err != nil {
		if ew.err != nil {
			return c, ew.err // not a kernel: say so, not how decompression stopped
		}
		return c, err
	}
	if err := ew.finish(); err != nil {
		return c, err
	}
	return c, nil
}

// ExtractVmlinuxFile extracts the vmlinux in the bzImage src to dst,
// atomically: dst appears, complete, only when extraction succeeds.
func ExtractVmlinuxFile(src, dst string) (Compression, error) {
	in, err := os.Open(src)
	if err != nil {
		return CompressionNone, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return CompressionNone, err
	}
	var c Compression
	err = writeFileAtomic(dst, 0o644, func(w io.Writer) error {
		var err error
		c, err = ExtractVmlinux(in, st.Size(), w)
		return err
	})
	if err != nil {
		return c, fmt.Errorf("extract vmlinux from %s: %w", src, err)
	}
	return c, nil
}

// writeFileAtomic writes dst through a temporary file in the same
// directory, synced and renamed into place, so that a crash or an error
// never leaves a partial dst behind.
func writeFileAtomic(dst string, perm os.FileMode, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// elfCheckWriter holds back the first bytes written through it until
// they can be checked to be an x86-64 ELF executable header.
type elfCheckWriter struct {
	w       io.Writer
	head    []byte
	checked bool
	err     error // the header check's verdict
}

func (e *elfCheckWriter) Write(p []byte) (int, error) {
	if e.checked {
		return e.w.Write(p)
	}
	n := min(len(p), elf64HeaderLen-len(e.head))
	e.head = append(e.head, p[:n]...)
	if len(e.head) < elf64HeaderLen {
		return len(p), nil
	}
	if err := checkELFHeader(e.head); err != nil {
		e.err = fmt.Errorf("decompressed payload: %w", err)
		return 0, e.err
	}
	e.checked = true
	if _, err := e.w.Write(e.head); err != nil {
		return 0, err
	}
	m, err := e.w.Write(p[n:])
	return n + m, err
}

// finish reports a stream that ended before a whole ELF header.
func (e *elfCheckWriter) finish() error {
	if !e.checked {
		return fmt.Errorf("decompressed payload is %d bytes, too short for an ELF header", len(e.head))
	}
	return nil
}
