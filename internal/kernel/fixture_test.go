package kernel

import (
	"os"
	"testing"
)

// TestWriteFixtureVmlinux writes the vmlinux the xz fixtures compress,
// and the tiny one the fuzz seeds compress, for
// testdata/make-xz-fixtures.sh; it does nothing otherwise.
func TestWriteFixtureVmlinux(t *testing.T) {
	dst := os.Getenv("KERNEL_TEST_WRITE_VMLINUX")
	if dst == "" {
		t.Skip("KERNEL_TEST_WRITE_VMLINUX not set: only testdata/make-xz-fixtures.sh needs this")
	}
	if err := os.WriteFile(dst, buildELF(elfSpec{notes: xenNotes(true), body: codeBody(64 << 10)}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+"-tiny", tinyVmlinux(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyVmlinux is the smallest kernel-like ELF the fuzz seeds wrap, about
// 300 bytes: an x86-64 header, the PVH note, a banner, and a few CALLs
// and JMPs for the BCJ filter.
func tinyVmlinux() []byte {
	body := []byte("Linux version 6.1.0-tiny #1 SMP\n\x00")
	for i := range 8 {
		body = append(body, 0xe8, byte(i*16), 0, 0, 0, 0xe9, 0xf0, 0xff, 0xff, 0xff)
	}
	return buildELF(elfSpec{notes: []note{{"Xen", xenElfnotePhys32Entry, u64le(0x1000850)}}, body: body})
}
