package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

const elf64HeaderLen = 64

// checkELFHeader checks that hdr (at least the 64-byte ELF64 header)
// describes what a VMM can boot: a little-endian 64-bit x86-64
// executable.
func checkELFHeader(hdr []byte) error {
	if len(hdr) < elf64HeaderLen || !bytes.HasPrefix(hdr, []byte(elf.ELFMAG)) {
		return fmt.Errorf("not an ELF file (starts % x)", hdr[:min(len(hdr), 8)])
	}
	if c := elf.Class(hdr[elf.EI_CLASS]); c != elf.ELFCLASS64 {
		return fmt.Errorf("ELF is %v, want ELFCLASS64", c)
	}
	if d := elf.Data(hdr[elf.EI_DATA]); d != elf.ELFDATA2LSB {
		return fmt.Errorf("ELF is %v, want little-endian", d)
	}
	if t := elf.Type(binary.LittleEndian.Uint16(hdr[16:])); t != elf.ET_EXEC {
		return fmt.Errorf("ELF type is %v, want ET_EXEC", t)
	}
	if m := elf.Machine(binary.LittleEndian.Uint16(hdr[18:])); m != elf.EM_X86_64 {
		return fmt.Errorf("ELF machine is %v, want EM_X86_64", m)
	}
	return nil
}

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit entry
// point of the PVH boot protocol. QEMU boots an ELF vmlinux with
// -kernel only when it carries this note.
const xenElfnotePhys32Entry = 18

// maxNotesLen bounds the note data read from one segment or section; a
// kernel's notes take a few hundred bytes.
const maxNotesLen = 1 << 20

// findPVHEntry looks for the Xen PHYS32_ENTRY note in f's PT_NOTE
// segments, then in its SHT_NOTE sections (a file may have either).
func findPVHEntry(f *elf.File) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > maxNotesLen {
			continue
		}
		if entry, ok := readPVHNote(p.Open(), int(p.Filesz), p.Align, f.ByteOrder); ok {
			return entry, true
		}
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > maxNotesLen {
			continue
		}
		if entry, ok := readPVHNote(s.Open(), int(s.Size), s.Addralign, f.ByteOrder); ok {
			return entry, true
		}
	}
	return 0, false
}

func readPVHNote(r io.Reader, size int, align uint64, order binary.ByteOrder) (uint64, bool) {
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, false
	}
	return pvhEntryFromNotes(data, align, order)
}

// pvhEntryFromNotes scans a run of ELF notes (namesz, descsz, type,
// name, desc; name and desc padded to the note alignment) for the Xen
// PHYS32_ENTRY note and returns the entry address it holds. Linux emits
// the address as a 64-bit value on x86-64 and 32-bit on i386.
func pvhEntryFromNotes(data []byte, align uint64, order binary.ByteOrder) (uint64, bool) {
	pad := uint64(4)
	if align == 8 {
		pad = 8
	}
	roundUp := func(n uint64) uint64 { return (n + pad - 1) &^ (pad - 1) }
	for len(data) >= 12 {
		namesz := uint64(order.Uint32(data[0:]))
		descsz := uint64(order.Uint32(data[4:]))
		typ := order.Uint32(data[8:])
		data = data[12:]
		nameEnd := roundUp(namesz)
		if nameEnd > uint64(len(data)) || descsz > uint64(len(data))-nameEnd {
			return 0, false
		}
		name := string(bytes.TrimRight(data[:namesz], "\x00"))
		desc := data[nameEnd : nameEnd+descsz]
		if name == "Xen" && typ == xenElfnotePhys32Entry {
			switch len(desc) {
			case 4:
				return uint64(order.Uint32(desc)), true
			case 8:
				return order.Uint64(desc), true
			}
		}
		next := nameEnd + roundUp(descsz)
		if next > uint64(len(data)) {
			return 0, false
		}
		data = data[next:]
	}
	return 0, false
}

// linuxBanner starts the kernel's linux_banner string, which holds the
// release and build description.
var linuxBanner = []byte("Linux version ")

// findBanner returns the kernel's build description: the text after
// "Linux version " (followed by a digit) up to the end of its line, or
// "" when r (size bytes) has none. It reads r in chunks so that a 66 MB
// vmlinux never sits in memory whole.
//
// Since Linux 6.1 a vmlinux holds two banners: init/version.c's weak one,
// built before the build number is known ("... # SMP ..."), and the
// init/version-timestamp.c one that replaces it at the final link ("...
// #1 SMP ..."), which is what the bzImage header and uname report. So a
// banner with a build number wins over the first one found.
func findBanner(r io.ReaderAt, size int64) string {
	const chunk = 1 << 20
	overlap := int64(len(linuxBanner))
	buf := make([]byte, min(chunk, size)+overlap) // a small file needs no 1 MiB buffer
	first := ""
	for off := int64(0); off < size; off += chunk {
		n, _ := r.ReadAt(buf, off)
		b := buf[:n]
		for i := 0; ; {
			j := bytes.Index(b[i:], linuxBanner)
			if j < 0 {
				break
			}
			start := off + int64(i+j+len(linuxBanner))
			i += j + 1
			s := readCString(r, start, 512)
			if s == "" || s[0] < '0' || s[0] > '9' {
				continue
			}
			if hasBuildNumber(s) {
				return s
			}
			if first == "" {
				first = s
			}
		}
		if n < len(buf) {
			break
		}
	}
	return first
}

// hasBuildNumber reports whether a banner has "#<digit>" in it.
func hasBuildNumber(banner string) bool {
	for i := strings.IndexByte(banner, '#'); i >= 0; {
		if i+1 < len(banner) && banner[i+1] >= '0' && banner[i+1] <= '9' {
			return true
		}
		next := strings.IndexByte(banner[i+1:], '#')
		if next < 0 {
			break
		}
		i += next + 1
	}
	return false
}
