package kernel

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testVersion = "6.1.0-test (builder@example) (gcc) #1 SMP PREEMPT_DYNAMIC Debian 6.1.1-1"

func TestInspect(t *testing.T) {
	vmlinux := testELF()
	for _, tc := range []struct {
		name string
		file []byte
		want Info
	}{
		{
			name: "ELF with PVH note",
			file: vmlinux,
			want: Info{Format: FormatELF, PVH: true, PVHEntry: 0x1000850, Version: testVersion, Release: "6.1.0-test"},
		},
		{
			name: "ELF with PVH note only in a section",
			file: buildELF(elfSpec{notes: xenNotes(true), notesInSection: true, body: codeBody(1000)}),
			want: Info{Format: FormatELF, PVH: true, PVHEntry: 0x1000850, Version: testVersion, Release: "6.1.0-test"},
		},
		{
			name: "ELF with a 32-bit PVH entry",
			file: buildELF(elfSpec{notes: []note{{"Xen", xenElfnotePhys32Entry, u32le(0x1234)}}}),
			want: Info{Format: FormatELF, PVH: true, PVHEntry: 0x1234},
		},
		{
			name: "ELF without PVH note",
			file: buildELF(elfSpec{notes: xenNotes(false), body: codeBody(1000)}),
			want: Info{Format: FormatELF, Version: testVersion, Release: "6.1.0-test"},
		},
		{
			name: "type 18 note from another owner",
			file: buildELF(elfSpec{notes: []note{{"Linux", xenElfnotePhys32Entry, u64le(1)}}}),
			want: Info{Format: FormatELF},
		},
		{
			name: "ELF with only the pre-6.1-style banner",
			file: buildELF(elfSpec{body: []byte("\x00Linux version 5.10.0-1-amd64 (x@y) #1 SMP Debian\n")}),
			want: Info{Format: FormatELF, Version: "5.10.0-1-amd64 (x@y) #1 SMP Debian", Release: "5.10.0-1-amd64"},
		},
		{
			name: "bzImage",
			file: buildBzImage(bzSpec{payload: compressXZ(t, vmlinux), version: "6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP"}),
			want: Info{Format: FormatBzImage, Compression: CompressionXZ, BootProtocol: 0x020f,
				Version: "6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP", Release: "6.1.0-50-amd64"},
		},
		{
			name: "bzImage with lzma payload",
			file: buildBzImage(bzSpec{payload: []byte{0x5d, 0, 0, 0x80, 0}, protocol: 0x020c}),
			want: Info{Format: FormatBzImage, Compression: CompressionLZMA, BootProtocol: 0x020c},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kernel")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Inspect(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Inspect =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestInspectErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "not an x86-64 ELF kernel or bzImage"},
		{"text", []byte("#!/bin/sh\necho hello\n"), "not an x86-64 ELF kernel or bzImage"},
		{"arm64 ELF", buildELF(elfSpec{machine: elf.EM_AARCH64}), "not an x86-64 ELF kernel or bzImage: ELF machine is EM_AARCH64"},
		{"32-bit ELF", buildELF(elfSpec{class: elf.ELFCLASS32}), "ELF is ELFCLASS32"},
		{"shared object", buildELF(elfSpec{typ: elf.ET_DYN}), "ELF type is ET_DYN"},
		{"old bzImage", buildBzImage(bzSpec{protocol: 0x0206, payload: []byte{1}}), "boot protocol 2.06 too old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kernel")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Inspect(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error = %v, want one naming %s and containing %q", err, path, tc.want)
			}
			if strings.Contains(tc.want, "not an x86-64") && !errors.Is(err, ErrNotKernel) {
				t.Errorf("error %v is not ErrNotKernel", err)
			}
		})
	}
}

func TestPVHEntryFromNotesMalformed(t *testing.T) {
	good := encodeNotes([]note{{"Xen", xenElfnotePhys32Entry, u64le(7)}})
	if e, ok := pvhEntryFromNotes(good, 4, le); !ok || e != 7 {
		t.Fatalf("well-formed note: %d, %v", e, ok)
	}
	for n := range len(good) {
		if _, ok := pvhEntryFromNotes(good[:n], 4, le); ok {
			t.Errorf("note cut to %d bytes was accepted", n)
		}
	}
	huge := append(u32le(0xffffffff), good[4:]...) // namesz past the end
	if _, ok := pvhEntryFromNotes(huge, 4, le); ok {
		t.Error("note with an oversized name was accepted")
	}
}
