package kernel

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kernelTrailer is what the kernel build appends to the compressed
// vmlinux inside the payload: its uncompressed size, little-endian.
func kernelTrailer(vmlinux []byte) []byte { return u32le(uint32(len(vmlinux))) }

// garbage is data after the payload; "YZ" and magics tempt the stream
// scanners.
var garbage = []byte("YZ\x00\x00\xfd7zXZ\x00\x1f\x8b(\xb5/\xfdpadding...")

func TestExtractVmlinux(t *testing.T) {
	vmlinux := testELF()
	for _, tc := range []struct {
		name     string
		c        Compression
		compress func(testing.TB, []byte) []byte
	}{
		{"gzip", CompressionGzip, compressGzip},
		{"xz", CompressionXZ, compressXZ},
		{"zstd", CompressionZstd, compressZstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sects := range []byte{0, 27} {
				img := buildBzImage(bzSpec{
					setupSects: sects,
					payload:    tc.compress(t, vmlinux),
					trailer:    append(kernelTrailer(vmlinux), garbage...),
					after:      garbage,
				})
				var out bytes.Buffer
				c, err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out)
				if err != nil {
					t.Fatalf("setup_sects %d: %v", sects, err)
				}
				if c != tc.c {
					t.Errorf("compression = %q, want %q", c, tc.c)
				}
				if !bytes.Equal(out.Bytes(), vmlinux) {
					t.Errorf("setup_sects %d: extracted %d bytes, not the %d-byte vmlinux", sects, out.Len(), len(vmlinux))
				}
			}
		})
	}
}

// TestExtractVmlinuxKernelXZ decompresses xz streams made the way the
// kernel makes them, `xz --x86 --lzma2`: a BCJ filter ahead of LZMA2,
// which github.com/ulikunitz/xz alone cannot read. The fixtures were
// made from codeBody's ELF by testdata/make-xz-fixtures.sh.
func TestExtractVmlinuxKernelXZ(t *testing.T) {
	vmlinux := buildELF(elfSpec{notes: xenNotes(true), body: codeBody(64 << 10)})
	for _, name := range []string{
		"vmlinux-x86-crc32.xz",        // as the kernel build does it
		"vmlinux-x86-crc64-blocks.xz", // several blocks, block padding
		"vmlinux-x86-sha256.xz",
		"vmlinux-lzma2-none.xz", // no BCJ, no check
	} {
		t.Run(name, func(t *testing.T) {
			stream, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			img := buildBzImage(bzSpec{payload: stream, trailer: kernelTrailer(vmlinux), after: garbage})
			var out bytes.Buffer
			if _, err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), vmlinux) {
				t.Fatalf("extracted %d bytes differ from the %d-byte vmlinux", out.Len(), len(vmlinux))
			}
		})
	}
}

func TestExtractVmlinuxErrors(t *testing.T) {
	vmlinux := testELF()
	xzPayload := compressXZ(t, vmlinux)
	gzPayload := compressGzip(t, vmlinux)
	zstdPayload := compressZstd(t, vmlinux)
	for _, tc := range []struct {
		name string
		img  []byte
		want string
	}{
		{"no magic", buildBzImage(bzSpec{noMagic: true, payload: xzPayload}), "not a bzImage: no HdrS magic"},
		{"tiny file", []byte("MZ"), "not a bzImage: no HdrS magic"},
		{"old protocol", buildBzImage(bzSpec{protocol: 0x0204, payload: xzPayload}), "boot protocol 2.04 too old"},
		{"payload past end of file", buildBzImage(bzSpec{payload: xzPayload, lengthExtra: 100}), "truncated bzImage: payload ends at byte"},
		{"setup header cut off", buildBzImage(bzSpec{payload: xzPayload})[:0x220], "truncated bzImage: setup header"},
		{"lzma", buildBzImage(bzSpec{payload: []byte{0x5d, 0, 0, 0x80, 0, 1, 2, 3}}), "bzImage payload is lzma-compressed; banger supports gzip, xz and zstd"},
		{"bzip2", buildBzImage(bzSpec{payload: []byte("BZh91AY&SY")}), "bzImage payload is bzip2-compressed; banger supports gzip, xz and zstd"},
		{"lz4", buildBzImage(bzSpec{payload: []byte{0x02, 0x21, 0x4c, 0x18, 1, 2}}), "bzImage payload is lz4-compressed"},
		{"lzo", buildBzImage(bzSpec{payload: []byte("\x89LZO\x00\r\n\x1a\n\x10")}), "bzImage payload is lzo-compressed"},
		{"unknown", buildBzImage(bzSpec{payload: []byte("plain text")}), "bzImage payload compression not recognised (starts 70 6c"},
		{"xz cut short", buildBzImage(bzSpec{payload: xzPayload[:len(xzPayload)/2]}), "xz payload: no end of stream found"},
		{"gzip cut short", buildBzImage(bzSpec{payload: gzPayload[:len(gzPayload)/2]}), "decompress gzip payload: unexpected EOF"},
		{"zstd cut short", buildBzImage(bzSpec{payload: zstdPayload[:len(zstdPayload)/2]}), "zstd payload: truncated frame"},
		{"zstd checksum cut off", buildBzImage(bzSpec{payload: zstdPayload[:len(zstdPayload)-2]}), "zstd payload: truncated frame"},
		{"not an ELF", buildBzImage(bzSpec{payload: compressXZ(t, bytes.Repeat([]byte("not a kernel "), 100))}), "decompressed payload: not an ELF file"},
		{"ELF for arm64", buildBzImage(bzSpec{payload: compressGzip(t, buildELF(elfSpec{machine: 183, body: codeBody(100)}))}), "ELF machine is EM_AARCH64"},
		{"too short for ELF", buildBzImage(bzSpec{payload: compressZstd(t, []byte("\x7fELF\x02\x01"))}), "decompressed payload is 6 bytes, too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := ExtractVmlinux(bytes.NewReader(tc.img), int64(len(tc.img)), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if strings.HasPrefix(tc.want, "not a bzImage") && !errors.Is(err, ErrNotBzImage) {
				t.Errorf("error %v is not ErrNotBzImage", err)
			}
			if strings.Contains(tc.name, "ELF") && out.Len() != 0 {
				t.Errorf("%d bytes written for a payload that is not a kernel", out.Len())
			}
		})
	}
}

func TestExtractVmlinuxFile(t *testing.T) {
	dir := t.TempDir()
	vmlinux := testELF()
	good := filepath.Join(dir, "vmlinuz")
	bad := filepath.Join(dir, "vmlinuz-bad")
	if err := os.WriteFile(good, buildBzImage(bzSpec{payload: compressXZ(t, vmlinux), trailer: kernelTrailer(vmlinux)}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, buildBzImage(bzSpec{payload: compressXZ(t, []byte("junk"))}), 0o644); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(dir, "vmlinux")
	c, err := ExtractVmlinuxFile(good, dst)
	if err != nil || c != CompressionXZ {
		t.Fatalf("ExtractVmlinuxFile = %q, %v", c, err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, vmlinux) {
		t.Fatalf("dst holds %d bytes (%v), want the %d-byte vmlinux", len(got), err, len(vmlinux))
	}

	// A failed extraction leaves neither dst nor a temporary file.
	failed := filepath.Join(dir, "vmlinux-failed")
	if _, err := ExtractVmlinuxFile(bad, failed); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("error = %v, want one naming %s", err, bad)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "vmlinux vmlinuz vmlinuz-bad" {
		t.Errorf("directory holds %v after a failed extraction", names)
	}
}

func TestUnfilterX86BCJShortBuffers(t *testing.T) {
	for n := range 6 {
		buf := bytes.Repeat([]byte{0xe8}, n)
		unfilterX86BCJ(buf, 0) // must not index past the end
	}
}
