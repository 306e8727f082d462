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

// tinyVmlinux is the smallest kernel-like ELF the fuzz seeds wrap: an
// x86-64 header, PVH note, banner and a few CALLs and JMPs for the BCJ
// filter, about 600 bytes.
func tinyVmlinux() []byte {
	return buildELF(elfSpec{notes: xenNotes(true), body: codeBody(256)})
}
