package initramfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// entry is a header plus its data, as the tests compare them.
type entry struct {
	Header
	data string
}

// readAll reads every entry of an archive.
func readAll(t testing.TB, archive []byte) []entry {
	t.Helper()
	r := NewReader(bytes.NewReader(archive))
	var out []entry
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d entries: %v", len(out), err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
		out = append(out, entry{*h, string(data)})
	}
}

func TestWriterReaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	steps := []error{
		w.Mkdir("/dev", 0o755),
		w.CharDevice("dev/console", 0o600, 5, 1),
		w.MkdirAll("/usr/local/bin", 0o750),
		w.WriteFile("/usr/local/bin/tool", []byte("#!/bin/sh\n"), fs.ModeSetuid|0o755),
		w.CopyFile("usr/data", strings.NewReader("streamed"), 8, 0o640),
		w.Symlink("usr/local/bin/tool", "/bin"),
		w.WriteFile("usr/empty", nil, 0o600),
		w.Mkdir("tmp", 0o777|fs.ModeSticky),
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if buf.Len()%512 != 0 {
		t.Errorf("archive is %d bytes, not padded to 512", buf.Len())
	}

	got := readAll(t, buf.Bytes())
	want := []entry{
		{Header{Name: "dev", Mode: fs.ModeDir | 0o755, NLink: 2}, ""},
		{Header{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1, NLink: 1}, ""},
		{Header{Name: "usr", Mode: fs.ModeDir | 0o750, NLink: 2}, ""},
		{Header{Name: "usr/local", Mode: fs.ModeDir | 0o750, NLink: 2}, ""},
		{Header{Name: "usr/local/bin", Mode: fs.ModeDir | 0o750, NLink: 2}, ""},
		{Header{Name: "usr/local/bin/tool", Mode: fs.ModeSetuid | 0o755, Size: 10, NLink: 1}, "#!/bin/sh\n"},
		{Header{Name: "usr/data", Mode: 0o640, Size: 8, NLink: 1}, "streamed"},
		{Header{Name: "bin", Mode: fs.ModeSymlink | 0o777, Size: 18, Linkname: "usr/local/bin/tool", NLink: 1}, ""},
		{Header{Name: "usr/empty", Mode: 0o600, NLink: 1}, ""},
		{Header{Name: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777, NLink: 2}, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("read %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		want[i].Ino = uint32(i + 1) // inodes are numbered in order
		if got[i] != want[i] {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestPadding writes names and data of every length mod 4 and checks
// the alignment rules on the raw bytes as well as by reading back.
func TestPadding(t *testing.T) {
	for nameLen := 1; nameLen <= 8; nameLen++ {
		for dataLen := 0; dataLen <= 8; dataLen++ {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			name := strings.Repeat("n", nameLen)
			data := strings.Repeat("d", dataLen)
			if err := w.WriteFile(name, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteFile(name+"2", []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			raw := buf.Bytes()
			// The name starts at 110 and is padded so data starts on
			// a multiple of 4; the data is padded so the next header
			// does too.
			dataOff := (newcHeaderLen + nameLen + 1 + 3) &^ 3
			if got := string(raw[newcHeaderLen : newcHeaderLen+nameLen]); got != name {
				t.Fatalf("name %q at 110, want %q", got, name)
			}
			for _, b := range raw[newcHeaderLen+nameLen : dataOff] {
				if b != 0 {
					t.Fatalf("name %d, data %d: non-zero name padding", nameLen, dataLen)
				}
			}
			if got := string(raw[dataOff : dataOff+dataLen]); got != data {
				t.Fatalf("data %q at %d, want %q", got, dataOff, data)
			}
			next := (dataOff + dataLen + 3) &^ 3
			if got := string(raw[next : next+6]); got != newcMagic {
				t.Fatalf("name %d, data %d: second header at %d starts %q", nameLen, dataLen, next, got)
			}
			entries := readAll(t, raw)
			if len(entries) != 2 || entries[0].data != data || entries[1].Name != name+"2" || entries[1].data != data {
				t.Fatalf("name %d, data %d: read back %+v", nameLen, dataLen, entries)
			}
		}
	}
}

func TestWriterErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(w *Writer) error
		want string
	}{
		{"missing parent", func(w *Writer) error { return w.WriteFile("etc/banger/x", nil, 0o644) }, "parent directory etc/banger is not in the archive"},
		{"parent is a file", func(w *Writer) error {
			w.WriteFile("etc", nil, 0o644)
			return w.WriteFile("etc/x", nil, 0o644)
		}, "parent directory etc is not in the archive"},
		{"duplicate", func(w *Writer) error {
			w.Mkdir("dev", 0o755)
			return w.Mkdir("/dev/", 0o755)
		}, "cpio entry dev: already in the archive"},
		{"MkdirAll over a file", func(w *Writer) error {
			w.WriteFile("x", nil, 0o644)
			return w.MkdirAll("x/y", 0o755)
		}, "cpio entry x: exists and is not a directory"},
		{"root", func(w *Writer) error { return w.Mkdir("/", 0o755) }, "empty or the root directory"},
		{"trailer name", func(w *Writer) error { return w.WriteFile("TRAILER!!!", nil, 0o644) }, "reserved"},
		{"NUL in name", func(w *Writer) error { return w.WriteFile("a\x00b", nil, 0o644) }, "NUL"},
		{"short source", func(w *Writer) error { return w.CopyFile("f", strings.NewReader("abc"), 5, 0o644) }, "source ended after 3 of 5 bytes"},
		{"empty symlink", func(w *Writer) error { return w.Symlink("", "l") }, "target must be"},
		{"after close", func(w *Writer) error {
			w.Close()
			return w.Mkdir("d", 0o755)
		}, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(NewWriter(io.Discard))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriterNamesNormalized(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.MkdirAll("/a//b/./c/", 0o755)
	w.WriteFile("/a/b/../b/c/f", []byte("x"), 0o644)
	w.Close()
	var names []string
	for _, e := range readAll(t, buf.Bytes()) {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); got != "a a/b a/b/c a/b/c/f" {
		t.Errorf("names = %s", got)
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterStickyError(t *testing.T) {
	w := NewWriter(&failingWriter{n: 200})
	var err error
	for i := 0; err == nil && i < 10; i++ {
		err = w.Mkdir(strings.Repeat("d", i+1), 0o755)
	}
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("error = %v, want disk full", err)
	}
	if err := w.Close(); err == nil || err.Error() != "disk full" {
		t.Errorf("Close after a failed write = %v, want the same error", err)
	}
}

func TestReaderErrors(t *testing.T) {
	var good bytes.Buffer
	w := NewWriter(&good)
	w.WriteFile("file", []byte("0123456789"), 0o644)
	w.Close()
	g := good.Bytes()

	for _, tc := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"empty", nil, "unexpected EOF"},
		{"old binary cpio", append([]byte{0xc7, 0x71}, g[2:]...), "not a newc archive"},
		{"odc", append([]byte("070707"), g[6:]...), "not a newc archive"},
		{"bad hex", append([]byte("070701zz"), g[8:]...), "bad header field"},
		{"cut in the data", g[:newcHeaderLen+8+4], "unexpected EOF"},
		{"no trailer", g[:newcHeaderLen+8+12], "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.archive))
			var err error
			for err == nil {
				if _, err = r.Next(); err == nil {
					_, err = io.ReadAll(r)
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.MkdirAll("etc/banger", 0o755)
	w.WriteFile("etc/banger/modules.load", []byte("/lib/modules/x.ko\n"), 0o644)
	w.Symlink("/init", "sbin")
	w.CharDevice("console", 0o600, 5, 1)
	w.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, archive []byte) {
		r := NewReader(bytes.NewReader(archive))
		for range 1000 {
			if _, err := r.Next(); err != nil {
				return
			}
			io.Copy(io.Discard, r)
		}
	})
}
