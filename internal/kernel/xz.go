package kernel

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// The kernel compresses an x86 vmlinux with `xz --x86 --lzma2`: an x86
// BCJ filter in front of LZMA2 (scripts/xz_wrap.sh). github.com/
// ulikunitz/xz decodes LZMA2 but rejects any filter chain longer than
// one, so this file reads the xz container itself (tukaani.org's "The
// .xz File Format" 1.0.4), hands each block's LZMA2 data to ulikunitz's
// LZMA2 reader, and undoes the BCJ filter.

// xz filter IDs banger understands.
const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

// xzRecord is one index record: the sizes of a block.
type xzRecord struct {
	unpadded     int64 // block header + compressed data + check
	uncompressed int64
}

// decodeXZ writes the decompressed contents of the single xz stream p
// (exactly one stream, as xzStreamLen measures it) to w. A stream whose
// index says it holds more than limit bytes is refused before any block
// is decoded, so no dictionary or buffer grows past limit.
func decodeXZ(p []byte, w io.Writer, limit int64) error {
	if len(p) < 24 || p[6] != 0 || p[7]&0xf0 != 0 {
		return errors.New("xz payload: bad stream header")
	}
	check := p[7] & 0x0f
	newHash, checkLen, err := xzCheck(check)
	if err != nil {
		return err
	}
	footer := p[len(p)-12:]
	indexLen := (int64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
	indexStart := int64(len(p)-12) - indexLen
	records, err := parseXZIndex(p[indexStart : len(p)-12])
	if err != nil {
		return err
	}

	var total int64
	for _, rec := range records {
		if total += rec.uncompressed; total > limit {
			return fmt.Errorf("decompress xz payload: more than %d bytes", limit)
		}
	}
	pos := int64(12)
	for i, rec := range records {
		// Block padding sits between the compressed data and the
		// check, so the block takes its unpadded size rounded up to 4.
		blockLen := (rec.unpadded + 3) &^ 3
		if blockLen > indexStart-pos {
			return fmt.Errorf("xz payload: block %d overruns the index", i)
		}
		out, err := decodeXZBlock(p[pos:pos+blockLen], rec, checkLen, newHash)
		if err != nil {
			return fmt.Errorf("xz payload block %d: %w", i, err)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		pos += blockLen
	}
	if pos != indexStart {
		return errors.New("xz payload: blocks do not end where the index starts")
	}
	return nil
}

// xzCheck returns the integrity check a stream header's check ID names.
func xzCheck(id byte) (func() hash.Hash, int, error) {
	switch id {
	case 0x00:
		return nil, 0, nil
	case 0x01:
		return func() hash.Hash { return crc32.NewIEEE() }, 4, nil
	case 0x04:
		return func() hash.Hash { return crc64.New(crc64.MakeTable(crc64.ECMA)) }, 8, nil
	case 0x0a:
		return sha256.New, 32, nil
	}
	return nil, 0, fmt.Errorf("xz payload: unsupported check type %#x", id)
}

// parseXZIndex reads the index records; its CRC has been checked by
// xzStreamLen.
func parseXZIndex(idx []byte) ([]xzRecord, error) {
	bad := errors.New("xz payload: bad index")
	if len(idx) < 8 || idx[0] != 0 {
		return nil, bad
	}
	r := bytes.NewReader(idx[1 : len(idx)-4])
	count, err := readXZVarint(r)
	if err != nil || count > uint64(len(idx)) {
		return nil, bad
	}
	records := make([]xzRecord, 0, count)
	for range count {
		unpadded, err1 := readXZVarint(r)
		uncompressed, err2 := readXZVarint(r)
		if err1 != nil || err2 != nil || unpadded == 0 || unpadded > 1<<40 || uncompressed > 1<<40 {
			return nil, bad
		}
		records = append(records, xzRecord{int64(unpadded), int64(uncompressed)})
	}
	return records, nil
}

// decodeXZBlock decodes one block (header, compressed data, padding,
// check) whose index record is rec to its uncompressed bytes.
func decodeXZBlock(b []byte, rec xzRecord, checkLen int, newHash func() hash.Hash) ([]byte, error) {
	hdrLen := (int(b[0]) + 1) * 4
	if b[0] == 0 || int64(hdrLen+checkLen) > rec.unpadded {
		return nil, errors.New("bad block header size")
	}
	hdr := b[:hdrLen]
	if crc32.ChecksumIEEE(hdr[:hdrLen-4]) != binary.LittleEndian.Uint32(hdr[hdrLen-4:]) {
		return nil, errors.New("block header CRC mismatch")
	}
	dictCap, bcj, bcjStart, err := parseXZFilters(hdr[1 : hdrLen-4])
	if err != nil {
		return nil, err
	}
	data := b[hdrLen : rec.unpadded-int64(checkLen)]
	for _, c := range b[len(data)+hdrLen : len(b)-checkLen] {
		if c != 0 {
			return nil, errors.New("non-zero block padding")
		}
	}

	// The decoder allocates its whole dictionary up front, and no match
	// can reach further back than the block's own output, so a
	// dictionary larger than the block is never needed.
	dictCap = int(max(min(int64(dictCap), rec.uncompressed), lzma.MinDictCap))
	lr := bytes.NewReader(data)
	zr, err := lzma.Reader2Config{DictCap: dictCap}.NewReader2(lr)
	if err != nil {
		return nil, err
	}
	// Read rather than allocate what the index claims, which a broken
	// file could overstate.
	out, err := io.ReadAll(io.LimitReader(zr, rec.uncompressed+1))
	if err != nil {
		return nil, fmt.Errorf("lzma2: %w", err)
	}
	if int64(len(out)) != rec.uncompressed {
		return nil, fmt.Errorf("block holds %d bytes, index says %d", len(out), rec.uncompressed)
	}
	if !zr.EOS() || lr.Len() != 0 {
		return nil, errors.New("block does not end where the index says")
	}
	if bcj {
		unfilterX86BCJ(out, bcjStart)
	}
	if newHash != nil {
		h := newHash()
		h.Write(out)
		// xz stores CRC32 and CRC64 little-endian, which is the
		// reverse of hash.Hash's big-endian Sum.
		sum := h.Sum(nil)
		if checkLen != sha256.Size {
			for i, j := 0, len(sum)-1; i < j; i, j = i+1, j-1 {
				sum[i], sum[j] = sum[j], sum[i]
			}
		}
		if !bytes.Equal(sum, b[len(b)-checkLen:]) {
			return nil, errors.New("integrity check failed")
		}
	}
	return out, nil
}

// parseXZFilters reads a block header's flags, optional sizes and filter
// flags, and accepts an optional x86 BCJ filter followed by LZMA2.
func parseXZFilters(h []byte) (dictCap int, bcj bool, bcjStart uint32, err error) {
	r := bytes.NewReader(h)
	flags, _ := r.ReadByte()
	if flags&0x3c != 0 {
		return 0, false, 0, errors.New("reserved block flags set")
	}
	if flags&0x40 != 0 { // compressed size
		if _, err := readXZVarint(r); err != nil {
			return 0, false, 0, err
		}
	}
	if flags&0x80 != 0 { // uncompressed size
		if _, err := readXZVarint(r); err != nil {
			return 0, false, 0, err
		}
	}
	nfilters := int(flags&0x03) + 1
	for i := range nfilters {
		id, err1 := readXZVarint(r)
		propsLen, err2 := readXZVarint(r)
		if err1 != nil || err2 != nil || propsLen > uint64(r.Len()) {
			return 0, false, 0, errors.New("bad filter flags")
		}
		props := make([]byte, propsLen)
		r.Read(props)
		last := i == nfilters-1
		switch {
		case id == xzFilterX86 && !last && !bcj:
			bcj = true
			switch len(props) {
			case 0:
			case 4:
				bcjStart = binary.LittleEndian.Uint32(props)
			default:
				return 0, false, 0, errors.New("bad x86 BCJ filter properties")
			}
		case id == xzFilterLZMA2 && last:
			if len(props) != 1 || props[0] > 40 {
				return 0, false, 0, errors.New("bad LZMA2 filter properties")
			}
			dictCap = lzma2DictCap(props[0])
		default:
			return 0, false, 0, fmt.Errorf("xz filter %#x in position %d is not supported (banger reads LZMA2, optionally after x86 BCJ)", id, i+1)
		}
	}
	// The rest of the header must be zero padding.
	for r.Len() > 0 {
		if b, _ := r.ReadByte(); b != 0 {
			return 0, false, 0, errors.New("non-zero block header padding")
		}
	}
	return dictCap, bcj, bcjStart, nil
}

// lzma2DictCap decodes the LZMA2 dictionary size property.
func lzma2DictCap(p byte) int {
	if p == 40 {
		return int(lzma.MaxDictCap)
	}
	size := int64(2|p&1) << (p/2 + 11)
	return int(max(size, lzma.MinDictCap))
}

// readXZVarint reads an xz multibyte integer: 7 bits a byte, least
// significant first, at most 9 bytes.
func readXZVarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, errors.New("truncated integer")
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if b == 0 && i > 0 {
				return 0, errors.New("non-minimal integer")
			}
			return v, nil
		}
	}
	return 0, errors.New("integer too long")
}

// unfilterX86BCJ undoes the x86 BCJ filter in place over a whole block:
// the encoder turned the relative targets of CALL (E8) and JMP (E9)
// into absolute addresses, which compress better. This is XZ Embedded's
// bcj_x86 run over the block in one piece, with start the filter's
// start offset; like the encoder, it leaves the last four bytes alone.
func unfilterX86BCJ(buf []byte, start uint32) {
	maskToAllowed := [8]bool{true, true, true, false, true, false, false, false}
	maskToBitNum := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	testMSByte := func(b byte) bool { return b == 0x00 || b == 0xff }

	if len(buf) <= 4 {
		return
	}
	size := len(buf) - 4
	prevPos := -1
	prevMask := uint32(0)
	for i := 0; i < size; i++ {
		if buf[i]&0xfe != 0xe8 {
			continue
		}
		d := i - prevPos
		if d > 3 {
			prevMask = 0
		} else {
			prevMask = (prevMask << (d - 1)) & 7
			if prevMask != 0 {
				b := buf[i+4-int(maskToBitNum[prevMask])]
				if !maskToAllowed[prevMask] || testMSByte(b) {
					prevPos = i
					prevMask = prevMask<<1 | 1
					continue
				}
			}
		}
		prevPos = i
		if !testMSByte(buf[i+4]) {
			prevMask = prevMask<<1 | 1
			continue
		}
		src := binary.LittleEndian.Uint32(buf[i+1:])
		var dest uint32
		for {
			dest = src - (start + uint32(i) + 5)
			if prevMask == 0 {
				break
			}
			j := maskToBitNum[prevMask] * 8
			if !testMSByte(byte(dest >> (24 - j))) {
				break
			}
			src = dest ^ (1<<(32-j) - 1)
		}
		dest &= 0x01ffffff
		dest |= -(dest & 0x01000000)
		binary.LittleEndian.PutUint32(buf[i+1:], dest)
		i += 4
	}
}
