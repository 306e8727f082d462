package kernel

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What one fuzz input may cost. The decoders are the production ones;
// only their output limit is lowered, so an input that inflates to a
// gigabyte stops at fuzzLimit with the same error a real kernel gets at
// maxVmlinuxSize. Inputs over fuzzMaxInput are skipped: a setup header
// and a payload of a few hundred bytes reach every decoder path, and
// the fuzzer spends its time minimizing whatever it finds, at a cost
// that grows with the input's size.
const (
	fuzzLimit    = 1 << 20
	fuzzMaxInput = 16 << 10
)

// fuzzSeed is one small, valid bzImage FuzzExtractVmlinux starts from.
type fuzzSeed struct {
	name string
	c    Compression
	img  []byte
}

// fuzzSeeds wraps tinyVmlinux in a minimal bzImage (one setup sector)
// once per decoder path: gzip, zstd, plain LZMA2 xz, and the kernel's
// own `xz --x86` streams from xz-utils (one block, several blocks, a
// BCJ start offset and each check type).
func fuzzSeeds(tb testing.TB) []fuzzSeed {
	vmlinux := tinyVmlinux()
	bz := func(payload []byte) []byte {
		return buildBzImage(bzSpec{setupSects: 1, payload: payload, trailer: kernelTrailer(vmlinux)})
	}
	seeds := []fuzzSeed{
		{"gzip", CompressionGzip, bz(compressGzip(tb, vmlinux))},
		{"zstd", CompressionZstd, bz(compressZstd(tb, vmlinux))},
		{"xz lzma2", CompressionXZ, bz(compressXZ(tb, vmlinux))},
	}
	for _, name := range []string{"tiny-x86-crc32.xz", "tiny-x86-crc64-blocks.xz", "tiny-x86-start-sha256.xz"} {
		stream, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, fuzzSeed{name, CompressionXZ, bz(stream)})
	}
	return seeds
}

// TestFuzzSeeds: every seed is a kernel ExtractVmlinux unpacks, and
// small, so that FuzzExtractVmlinux mutates and minimizes cheap inputs
// (with the 37 KB fixtures it used to seed from, it ran 12 inputs a
// minute).
func TestFuzzSeeds(t *testing.T) {
	for _, s := range fuzzSeeds(t) {
		t.Run(s.name, func(t *testing.T) {
			if len(s.img) > 2<<10 {
				t.Errorf("seed is %d bytes; keep fuzz seeds under 2 KiB", len(s.img))
			}
			var out bytes.Buffer
			c, err := ExtractVmlinux(bytes.NewReader(s.img), int64(len(s.img)), &out)
			if err != nil || c != s.c || !bytes.Equal(out.Bytes(), tinyVmlinux()) {
				t.Errorf("ExtractVmlinux = %q, %v, %d bytes; want %q and the %d-byte vmlinux", c, err, out.Len(), s.c, len(tinyVmlinux()))
			}
		})
	}
}

// TestExtractVmlinuxLimit: each decoder stops at the limit, with an
// error saying so, and unpacks a kernel of exactly the limit.
func TestExtractVmlinuxLimit(t *testing.T) {
	vmlinux := testELF()
	n := int64(len(vmlinux))
	for _, tc := range []struct {
		name     string
		compress func(testing.TB, []byte) []byte
	}{
		{"gzip", compressGzip},
		{"xz", compressXZ},
		{"zstd", compressZstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := buildBzImage(bzSpec{payload: tc.compress(t, vmlinux), trailer: kernelTrailer(vmlinux)})
			var out bytes.Buffer
			if _, err := extractVmlinux(bytes.NewReader(img), int64(len(img)), &out, n); err != nil || out.Len() != len(vmlinux) {
				t.Errorf("at a limit of its own size: %v, %d bytes", err, out.Len())
			}
			out.Reset()
			_, err := extractVmlinux(bytes.NewReader(img), int64(len(img)), &out, n-1)
			if want := fmt.Sprintf("decompress %s payload: more than %d bytes", tc.name, n-1); err == nil || err.Error() != want {
				t.Errorf("one byte over the limit: %v, want %s", err, want)
			}
			if int64(out.Len()) > n-1 {
				t.Errorf("%d bytes written past a limit of %d", out.Len(), n-1)
			}
		})
	}
}

// FuzzExtractVmlinux: no input panics, hangs or inflates past the
// limit, nothing but a checked x86-64 ELF header ever reaches the
// writer, and what ExtractVmlinux unpacks, inspect classifies the same.
func FuzzExtractVmlinux(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.img)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		if len(img) > fuzzMaxInput {
			t.Skip("over fuzzMaxInput")
		}
		var out bytes.Buffer
		c, err := extractVmlinux(bytes.NewReader(img), int64(len(img)), &out, fuzzLimit)
		if out.Len() > fuzzLimit {
			t.Errorf("%d bytes written past the %d-byte limit", out.Len(), fuzzLimit)
		}
		if out.Len() > 0 {
			if herr := checkELFHeader(out.Bytes()); herr != nil {
				t.Errorf("wrote %d bytes that are not a kernel: %v", out.Len(), herr)
			}
		}
		if err != nil && strings.Contains(err.Error(), "more than") && !strings.Contains(err.Error(), fmt.Sprint(fuzzLimit)) {
			t.Errorf("size error %v does not name the limit", err)
		}
		info, ierr := inspect(bytes.NewReader(img), int64(len(img)))
		if err == nil && (ierr != nil || info.Format != FormatBzImage || info.Compression != c) {
			t.Errorf("extracted a %s kernel that inspect calls %+v, %v", c, info, ierr)
		}
	})
}
