package initramfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
)

// Reader reads a newc archive, one entry at a time, like archive/tar:
// Next returns the next header and Read reads that entry's data. It
// stops at the trailer; whatever follows (padding, another archive) is
// left unread.
type Reader struct {
	r         io.Reader
	remaining int64 // unread data of the current entry
	pad       int64 // padding after the current entry's data
	done      bool
	err       error
}

// NewReader returns a Reader of the archive in r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r}
}

// Next skips the rest of the current entry and returns the next one's
// header, or io.EOF after the trailer. A symlink's target is read into
// Header.Linkname.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	h, err := r.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("read cpio archive: %w", err)
		return nil, r.err
	}
	if h == nil {
		r.done = true
		return nil, io.EOF
	}
	return h, nil
}

// next reads one header; it returns nil at the trailer.
func (r *Reader) next() (*Header, error) {
	if _, err := io.CopyN(io.Discard, r.r, r.remaining+r.pad); err != nil {
		return nil, err
	}
	r.remaining, r.pad = 0, 0

	var raw [newcHeaderLen]byte
	if _, err := io.ReadFull(r.r, raw[:]); err != nil {
		return nil, err
	}
	if magic := string(raw[:6]); magic != newcMagic && magic != newcCRCMagic {
		return nil, fmt.Errorf("bad magic %q: not a newc archive", magic)
	}
	var f [13]uint32
	for i := range f {
		field := raw[6+8*i : 14+8*i]
		v, err := strconv.ParseUint(string(field), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("bad header field %q", field)
		}
		f[i] = uint32(v)
	}
	namesize := int64(f[11])
	if namesize < 1 || namesize > maxNameLen {
		return nil, fmt.Errorf("name size %d out of range", namesize)
	}
	name := make([]byte, namesize+padLen(newcHeaderLen+namesize))
	if _, err := io.ReadFull(r.r, name); err != nil {
		return nil, err
	}
	if name[namesize-1] != 0 {
		return nil, errors.New("entry name is not NUL-terminated")
	}
	h := &Header{
		Name:    string(name[:namesize-1]),
		Ino:     f[0],
		UID:     f[2],
		GID:     f[3],
		NLink:   f[4],
		ModTime: f[5],
		Size:    int64(f[6]),
		Major:   f[9],
		Minor:   f[10],
	}
	if h.Name == trailerName {
		return nil, nil
	}
	mode, err := fileMode(f[1])
	if err != nil {
		return nil, fmt.Errorf("entry %s: %w", h.Name, err)
	}
	h.Mode = mode
	r.remaining, r.pad = h.Size, padLen(h.Size)
	if mode.Type() == fs.ModeSymlink {
		if h.Size == 0 || h.Size >= maxNameLen {
			return nil, fmt.Errorf("symlink %s: target of %d bytes", h.Name, h.Size)
		}
		target := make([]byte, h.Size)
		if _, err := io.ReadFull(r.r, target); err != nil {
			return nil, err
		}
		h.Linkname = string(target)
		r.remaining = 0
	}
	return h, nil
}

// Read reads the current entry's data.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.r.Read(p)
	r.remaining -= int64(n)
	if errors.Is(err, io.EOF) {
		if r.remaining > 0 {
			r.err = fmt.Errorf("read cpio archive: %w", io.ErrUnexpectedEOF)
			return n, r.err
		}
		err = nil
	}
	return n, err
}
