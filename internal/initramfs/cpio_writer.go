package initramfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
)

// Writer writes a newc archive. Every entry gets a fresh inode number,
// uid and gid 0 and mtime 0, so the same calls give the same bytes.
//
// The kernel's unpacker does not create missing parent directories: an
// entry whose parent is absent is dropped at boot. So Writer refuses an
// entry unless its parent was written first (MkdirAll writes them), and
// refuses to write the same name twice.
//
// After an error writing to the underlying writer, the archive is
// broken and every later call returns that error.
type Writer struct {
	w       io.Writer
	nextIno uint32
	entries map[string]fs.FileMode
	written int64
	closed  bool
	err     error
}

// filePermBits are the mode bits a file or directory may carry; the
// setuid, setgid and sticky bits are fs.Mode* bits, as for os.Chmod.
const filePermBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// NewWriter returns a Writer that writes an archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, nextIno: 1, entries: map[string]fs.FileMode{}}
}

// Mkdir adds a directory.
func (w *Writer) Mkdir(name string, perm fs.FileMode) error {
	return w.add(name, fs.ModeDir|perm&filePermBits, nil, 0)
}

// MkdirAll adds name and whichever of its parents the archive does not
// have yet, all with perm. A name that is already a directory is fine.
func (w *Writer) MkdirAll(name string, perm fs.FileMode) error {
	clean, err := cleanName(name)
	if err != nil {
		return err
	}
	if m, ok := w.entries[clean]; ok {
		if m.IsDir() {
			return nil
		}
		return fmt.Errorf("cpio entry %s: exists and is not a directory", clean)
	}
	if parent := path.Dir(clean); parent != "." {
		if err := w.MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	return w.Mkdir(clean, perm)
}

// WriteFile adds a regular file holding data.
func (w *Writer) WriteFile(name string, data []byte, perm fs.FileMode) error {
	return w.add(name, perm&filePermBits, data, 0)
}

// CopyFile adds a regular file holding the size bytes read from r. The
// header, which records the size, is written first, so r must deliver
// exactly size bytes: a short r is an error that leaves the archive
// broken.
func (w *Writer) CopyFile(name string, r io.Reader, size int64, perm fs.FileMode) error {
	return w.addFrom(name, perm&filePermBits, size, r)
}

// Symlink adds name as a symbolic link to target (the argument order
// of os.Symlink).
func (w *Writer) Symlink(target, name string) error {
	if target == "" || len(target) >= maxNameLen {
		return fmt.Errorf("cpio symlink %s: target must be 1 to %d bytes", name, maxNameLen-1)
	}
	return w.add(name, fs.ModeSymlink|0o777, []byte(target), 0)
}

// CharDevice adds a character device node.
func (w *Writer) CharDevice(name string, perm fs.FileMode, major, minor uint32) error {
	return w.add(name, fs.ModeDevice|fs.ModeCharDevice|perm.Perm(), nil, uint64(major)<<32|uint64(minor))
}

// Close writes the trailer and pads the archive to a multiple of 512
// bytes, as the kernel's gen_init_cpio does. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	w.closed = true
	h := Header{Name: trailerName, NLink: 1}
	if err := w.writeHeader(&h); err != nil {
		return err
	}
	if pad := (512 - w.written%512) % 512; pad > 0 {
		return w.write(make([]byte, pad))
	}
	return nil
}

// add writes an entry whose data (a file's contents, a symlink's
// target) is in memory.
func (w *Writer) add(name string, mode fs.FileMode, data []byte, rdev uint64) error {
	size := int64(len(data))
	h, err := w.prepare(name, mode, size)
	if err != nil {
		return err
	}
	h.Major, h.Minor = uint32(rdev>>32), uint32(rdev)
	if err := w.writeHeader(h); err != nil {
		return err
	}
	if err := w.write(data); err != nil {
		return err
	}
	return w.write(make([]byte, padLen(size)))
}

// addFrom writes a regular file whose size bytes come from r.
func (w *Writer) addFrom(name string, mode fs.FileMode, size int64, r io.Reader) error {
	h, err := w.prepare(name, mode, size)
	if err != nil {
		return err
	}
	if err := w.writeHeader(h); err != nil {
		return err
	}
	n, err := io.CopyN(w.w, r, size)
	w.written += n
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("cpio entry %s: source ended after %d of %d bytes", h.Name, n, size)
		}
		w.err = err
		return err
	}
	return w.write(make([]byte, padLen(size)))
}

// prepare checks a new entry and assigns its header.
func (w *Writer) prepare(name string, mode fs.FileMode, size int64) (*Header, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.closed {
		return nil, errors.New("cpio writer is closed")
	}
	clean, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	if _, dup := w.entries[clean]; dup {
		return nil, fmt.Errorf("cpio entry %s: already in the archive", clean)
	}
	if parent := path.Dir(clean); parent != "." && !w.entries[parent].IsDir() {
		return nil, fmt.Errorf("cpio entry %s: parent directory %s is not in the archive (the kernel would drop the entry)", clean, parent)
	}
	if size < 0 || size > maxEntrySize {
		return nil, fmt.Errorf("cpio entry %s: size %d does not fit a newc header", clean, size)
	}
	w.entries[clean] = mode
	h := &Header{Name: clean, Mode: mode, Size: size, Ino: w.nextIno, NLink: 1}
	if mode.IsDir() {
		h.NLink = 2
	}
	w.nextIno++
	return h, nil
}

// writeHeader writes h's header and name, padded.
func (w *Writer) writeHeader(h *Header) error {
	mode, err := unixMode(h.Mode)
	if err != nil {
		return err
	}
	if h.Name == trailerName {
		mode = 0
	}
	b := make([]byte, 0, newcHeaderLen+len(h.Name)+4)
	b = append(b, newcMagic...)
	for _, v := range []uint32{
		h.Ino, mode, h.UID, h.GID, h.NLink, h.ModTime, uint32(h.Size),
		0, 0, // the device the file lived on
		h.Major, h.Minor,
		uint32(len(h.Name) + 1),
		0, // check: only the 070702 format uses it
	} {
		b = appendHex8(b, v)
	}
	b = append(b, h.Name...)
	b = append(b, 0)
	b = append(b, make([]byte, padLen(int64(len(b))))...)
	return w.write(b)
}

func appendHex8(b []byte, v uint32) []byte {
	s := strconv.FormatUint(uint64(v), 16)
	for i := len(s); i < 8; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func (w *Writer) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.w.Write(b)
	w.written += int64(n)
	if err != nil {
		w.err = err
	}
	return err
}
