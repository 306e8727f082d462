package kernel

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Builders for the synthetic kernels the tests use: hand-assembled ELF64
// files and bzImages around them, small enough to build in every test.

// note is one ELF note.
type note struct {
	name string
	typ  uint32
	desc []byte
}

var le = binary.LittleEndian

func u64le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func u32le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// xenNotes are notes like those a Debian vmlinux carries; pvh adds the
// PHYS32_ENTRY note at the end, as the real kernel does.
func xenNotes(pvh bool) []note {
	notes := []note{
		{"Xen", 6, []byte("linux\x00")},
		{"Xen", 5, []byte("xen-3.0\x00")},
		{"GNU", 3, bytes.Repeat([]byte{0xab}, 20)},
		{"Linux", 0x100, []byte("6.1.0-test\x00")}, // odd sizes exercise padding
	}
	if pvh {
		notes = append(notes, note{"Xen", xenElfnotePhys32Entry, u64le(0x1000850)})
	}
	return notes
}

// encodeNotes lays notes out with 4-byte alignment.
func encodeNotes(notes []note) []byte {
	var b []byte
	pad := func() {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	for _, n := range notes {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(n.name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(n.desc)))
		b = binary.LittleEndian.AppendUint32(b, n.typ)
		b = append(b, n.name...)
		b = append(b, 0)
		pad()
		b = append(b, n.desc...)
		pad()
	}
	return b
}

// elfSpec describes a synthetic ELF64 file.
type elfSpec struct {
	class   elf.Class   // default ELFCLASS64
	typ     elf.Type    // default ET_EXEC
	machine elf.Machine // default EM_X86_64
	notes   []note
	// notesInSection puts the notes only in an SHT_NOTE section, with
	// no PT_NOTE segment.
	notesInSection bool
	body           []byte // after the notes: "code" and strings
}

// buildELF assembles a minimal ELF64: header, one PT_LOAD over the
// whole file, a PT_NOTE (or a section table with a .notes section),
// the notes, and the body.
func buildELF(s elfSpec) []byte {
	if s.class == 0 {
		s.class = elf.ELFCLASS64
	}
	if s.typ == 0 {
		s.typ = elf.ET_EXEC
	}
	if s.machine == 0 {
		s.machine = elf.EM_X86_64
	}
	const ehsize, phentsize, shentsize = 64, 56, 64
	nph := 2
	if s.notesInSection {
		nph = 1
	}
	notes := encodeNotes(s.notes)
	notesOff := uint64(ehsize + nph*phentsize)
	bodyOff := notesOff + uint64(len(notes))
	end := bodyOff + uint64(len(s.body))
	shstrtab := []byte("\x00.notes\x00.shstrtab\x00")
	shstrOff := end
	shOff := (shstrOff + uint64(len(shstrtab)) + 7) &^ 7

	le := binary.LittleEndian
	b := make([]byte, ehsize)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS] = byte(s.class)
	b[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	b[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le.PutUint16(b[16:], uint16(s.typ))
	le.PutUint16(b[18:], uint16(s.machine))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[24:], 0x1000000) // entry
	le.PutUint64(b[32:], ehsize)    // phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phentsize)
	le.PutUint16(b[56:], uint16(nph))
	le.PutUint16(b[58:], shentsize)
	if s.notesInSection {
		le.PutUint64(b[40:], shOff)
		le.PutUint16(b[60:], 3) // shnum: null, .notes, .shstrtab
		le.PutUint16(b[62:], 2) // shstrndx
	}

	phdr := func(typ elf.ProgType, flags elf.ProgFlag, off, size, align uint64) {
		p := make([]byte, phentsize)
		le.PutUint32(p[0:], uint32(typ))
		le.PutUint32(p[4:], uint32(flags))
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], 0xffffffff81000000+off) // vaddr
		le.PutUint64(p[24:], 0x1000000+off)          // paddr
		le.PutUint64(p[32:], size)
		le.PutUint64(p[40:], size)
		le.PutUint64(p[48:], align)
		b = append(b, p...)
	}
	phdr(elf.PT_LOAD, elf.PF_R|elf.PF_X, 0, end, 0x1000)
	if !s.notesInSection {
		phdr(elf.PT_NOTE, elf.PF_R, notesOff, uint64(len(notes)), 4)
	}
	b = append(b, notes...)
	b = append(b, s.body...)
	if s.notesInSection {
		b = append(b, shstrtab...)
		for uint64(len(b)) < shOff {
			b = append(b, 0)
		}
		shdr := func(name uint32, typ elf.SectionType, off, size, align uint64) {
			h := make([]byte, shentsize)
			le.PutUint32(h[0:], name)
			le.PutUint32(h[4:], uint32(typ))
			le.PutUint64(h[24:], off)
			le.PutUint64(h[32:], size)
			le.PutUint64(h[48:], align)
			b = append(b, h...)
		}
		shdr(0, elf.SHT_NULL, 0, 0, 0)
		shdr(1, elf.SHT_NOTE, notesOff, uint64(len(notes)), 4)
		shdr(8, elf.SHT_STRTAB, shstrOff, uint64(len(shstrtab)), 1)
	}
	return b
}

// codeBody is deterministic x86-looking bytes: runs of CALL (E8) and JMP
// (E9) with small relative targets among filler, which is what the x86
// BCJ filter rewrites, and a linux_banner pair like Linux 6.1's.
func codeBody(n int) []byte {
	b := []byte("\x00Linux version 6.1.0-test (builder@example) (gcc) # SMP PREEMPT_DYNAMIC Debian 6.1.1-1\n\x00" +
		"%s version %s\x00" +
		"Linux version 6.1.0-test (builder@example) (gcc) #1 SMP PREEMPT_DYNAMIC Debian 6.1.1-1\n\x00")
	x := uint32(12345)
	for len(b) < n {
		x = x*1664525 + 1013904223 // a fixed LCG: same bytes on every Go version
		switch x >> 29 {
		case 0, 1:
			rel := int32(x>>8&0xffff) - 0x8000
			b = append(b, 0xe8)
			b = binary.LittleEndian.AppendUint32(b, uint32(rel))
		case 2:
			b = append(b, 0xe9, byte(x>>8), byte(x>>16), 0, 0)
		default:
			b = append(b, 0x48, 0x89, byte(x>>24), 0x90)
		}
	}
	return b[:n]
}

// testELF is the kernel the bzImage tests wrap: x86-64, with a PVH note.
func testELF() []byte {
	return buildELF(elfSpec{notes: xenNotes(true), body: codeBody(40 << 10)})
}

func compressGzip(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressXZ(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressZstd(t testing.TB, data []byte) []byte {
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(data, nil)
}

// bzSpec describes a synthetic bzImage.
type bzSpec struct {
	setupSects byte   // 0 means 4, as in the boot protocol
	protocol   uint16 // default 0x020f
	noMagic    bool
	version    string // kernel_version string, "" for none
	// payload is the compressed kernel; trailer follows it inside
	// payload_length (the kernel build appends the uncompressed size
	// there), after is file data beyond the payload.
	payload, trailer, after []byte
	// lengthExtra is added to payload_length, to make it overrun.
	lengthExtra uint32
}

// buildBzImage lays out the boot sector and setup code, the header
// fields banger reads, 256 bytes of "decompressor" code, the payload
// and whatever follows it.
func buildBzImage(s bzSpec) []byte {
	if s.protocol == 0 {
		s.protocol = 0x020f
	}
	sects := int(s.setupSects)
	if sects == 0 {
		sects = 4
	}
	setupLen := (sects + 1) * 512
	b := make([]byte, setupLen)
	le := binary.LittleEndian
	b[offSetupSects] = s.setupSects
	le.PutUint16(b[0x1fe:], 0xaa55)
	if !s.noMagic {
		copy(b[offHeaderMagic:], "HdrS")
	}
	le.PutUint16(b[offProtocol:], s.protocol)
	if s.version != "" {
		copy(b[0x400:], s.version+"\x00")
		le.PutUint16(b[offKernelVersion:], 0x400-0x200)
	}
	const payloadOffset = 0x100
	le.PutUint32(b[offPayloadOffset:], payloadOffset)
	le.PutUint32(b[offPayloadLength:], uint32(len(s.payload)+len(s.trailer))+s.lengthExtra)
	b = append(b, bytes.Repeat([]byte{0x90}, payloadOffset)...)
	b = append(b, s.payload...)
	b = append(b, s.trailer...)
	b = append(b, s.after...)
	return b
}
