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
// maxVmlinuxSize. Payloads over fuzzMaxPayload are skipped: a few
// hundred bytes reach every decoder path.
const (
	fuzzLimit      = 1 << 20
	fuzzMaxPayload = 16 << 10
)

// The fuzz input is the setup header and the payload, not a whole
// bzImage: the fuzzer shrinks every input it finds new coverage with,
// at a cost that grows with the square of its length, and a whole
// bzImage has a kilobyte of setup sector before its payload that no
// code reads. (Fuzzing whole images, the first minimization took the
// default minute, and it ran 12 inputs in it.)
const (
	fuzzHeaderLen = setupHeaderEnd - offSetupSects // 0x1f1 to 0x250
	fuzzSetupLen  = 2 * 512                        // the boot sector and one setup sector
)

// fuzzImage lays out a bzImage from a fuzz input: hdr over the setup
// header, the payload after the setup sectors (where payload_offset 0
// and setup_sects 1 put it). A header shorter than fuzzHeaderLen is a
// file cut off inside its header.
func fuzzImage(hdr, payload []byte) []byte {
	if len(hdr) < fuzzHeaderLen {
		img := make([]byte, offSetupSects+len(hdr))
		copy(img[offSetupSects:], hdr)
		return img
	}
	img := make([]byte, fuzzSetupLen, fuzzSetupLen+len(payload))
	copy(img[offSetupSects:], hdr[:fuzzHeaderLen])
	return append(img, payload...)
}

// fuzzHeader is the setup header of a bzImage whose payload (trailer
// included) is n bytes at the start of the protected-mode code.
func fuzzHeader(n int) []byte {
	img := buildBzImage(bzSpec{setupSects: 1, payload: make([]byte, n)})
	hdr := bytes.Clone(img[offSetupSects:setupHeaderEnd])
	le.PutUint32(hdr[offPayloadOffset-offSetupSects:], 0)
	return hdr
}

// fuzzSeed is one small, valid kernel FuzzExtractVmlinux starts from.
type fuzzSeed struct {
	name    string
	c       Compression
	payload []byte // compressed vmlinux and its size trailer
}

func (s fuzzSeed) header() []byte { return fuzzHeader(len(s.payload)) }

// fuzzSeeds compress tinyVmlinux once per decoder path: gzip, zstd,
// plain LZMA2 xz, and the kernel's own `xz --x86` streams from xz-utils
// (one block, several blocks, a BCJ start offset and each check type).
func fuzzSeeds(tb testing.TB) []fuzzSeed {
	vmlinux := tinyVmlinux()
	trailed := func(p []byte) []byte { return append(p, kernelTrailer(vmlinux)...) }
	seeds := []fuzzSeed{
		{"gzip", CompressionGzip, trailed(compressGzip(tb, vmlinux))},
		{"zstd", CompressionZstd, trailed(compressZstd(tb, vmlinux))},
		{"xz lzma2", CompressionXZ, trailed(compressXZ(tb, vmlinux))},
	}
	for _, name := range []string{"tiny-x86-crc32.xz", "tiny-x86-crc64-blocks.xz", "tiny-x86-start-sha256.xz"} {
		stream, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, fuzzSeed{name, CompressionXZ, trailed(stream)})
	}
	return seeds
}

// TestFuzzSeeds: every seed is a kernel ExtractVmlinux unpacks, and
// small, so that FuzzExtractVmlinux mutates and shrinks cheap inputs.
func TestFuzzSeeds(t *testing.T) {
	for _, s := range fuzzSeeds(t) {
		t.Run(s.name, func(t *testing.T) {
			if n := len(s.header()) + len(s.payload); n > 400 {
				t.Errorf("seed is %d bytes; keep fuzz seeds under 400", n)
			}
			img := fuzzImage(s.header(), s.payload)
			var out bytes.Buffer
			c, err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out)
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
// writer, what ExtractVmlinux unpacks inspect classifies the same, and
// inspecting what it unpacked does not panic either.
func FuzzExtractVmlinux(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.header(), s.payload)
		// The stream cut off two bytes short of its end (and of the
		// size trailer), where the decoders' end-of-stream checks are.
		cut := s.payload[:len(s.payload)-4-2]
		f.Add(fuzzHeader(len(cut)), cut)
	}
	f.Fuzz(func(t *testing.T, hdr, payload []byte) {
		if len(payload) > fuzzMaxPayload {
			t.Skip("over fuzzMaxPayload")
		}
		img := fuzzImage(hdr, payload)
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
		if err == nil {
			inspect(bytes.NewReader(out.Bytes()), int64(out.Len()))
		}
	})
}
