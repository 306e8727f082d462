package rpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	fastjson "github.com/segmentio/encoding/json"

	"banger/internal/opid"
)

// Frame size caps. A request is small (a method and a few parameters);
// a response may carry a listing of many VMs.
const (
	DefaultMaxRequestBytes  = 1 << 20
	DefaultMaxResponseBytes = 64 << 20
)

var errFrameTooLarge = errors.New("frame too large")

// readFrame reads one newline-terminated frame of at most limit bytes
// (the newline excluded). A longer frame returns errFrameTooLarge; the
// stream can not be resynchronised after it, so callers close the
// connection.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	var frame []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(frame)+len(chunk) > limit+1 {
			return nil, errFrameTooLarge
		}
		if len(frame)+len(chunk) > cap(frame) {
			// Double: append grows large slices by a quarter, which for
			// a response of megabytes means copying it many times over.
			frame = slices.Grow(frame, max(len(frame), len(chunk)))
		}
		frame = append(frame, chunk...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(frame[:len(frame)-1], []byte("\r")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(frame) > 0:
			// A last frame without its newline still counts, which
			// makes `printf '{...}' | nc -U sock` work.
			return frame, nil
		default:
			return nil, err
		}
	}
}

// writeFrame writes v as one JSON line.
func writeFrame(w io.Writer, v any) error {
	buf, err := encodeFrame(getBuf(), v)
	if err == nil {
		_, err = w.Write(buf)
	}
	putBuf(buf)
	return err
}

// fastFlags are how frames and results are encoded. They are encoded
// with segmentio's encoding/json, which writes what the standard library
// writes about four times faster (a vm.list of 1,000 VMs is most of its
// cost in JSON), and trusts the raw messages frames carry — a Request's
// params or a Response's result — as this package encoded them itself a
// moment before, instead of parsing them a second time. Unlike
// encoding/json it does not escape <, > and & (a socket between banger's
// programs is no HTML page): decoded, the strings are the same.
const fastFlags = fastjson.SortMapKeys | fastjson.TrustRawMessage

// encodeFrame appends v to buf as one JSON line.
func encodeFrame(buf []byte, v any) ([]byte, error) {
	buf, err := fastjson.Append(buf, v, fastFlags)
	if err != nil {
		return buf, err
	}
	return append(buf, '\n'), nil
}

// maxPooledBuf is the largest buffer kept for reuse: the occasional huge
// response does not pin its memory for ever.
const maxPooledBuf = 4 << 20

// freeBufs holds encoding buffers, so that a large response is not
// allocated anew (and collected) at every call. It is a channel, not a
// sync.Pool: a pool is emptied by every garbage collection, and encoding
// a large response is what triggers them.
var freeBufs = make(chan []byte, 8)

func getBuf() []byte {
	select {
	case b := <-freeBufs:
		return b[:0]
	default:
		return nil
	}
}

func putBuf(b []byte) {
	if b == nil || cap(b) > maxPooledBuf {
		return
	}
	select {
	case freeBufs <- b:
	default:
	}
}

// decodeStrict decodes exactly one JSON value from data into v, refusing
// unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// decodeRequest parses and checks the shape of one request frame. It does
// not check the version or the method: dispatch does, so that those
// errors carry the request's own op id.
func decodeRequest(frame []byte) (Request, error) {
	var req Request
	if len(bytes.TrimSpace(frame)) == 0 {
		return req, errors.New("empty request")
	}
	if err := decodeStrict(frame, &req); err != nil {
		return Request{}, fmt.Errorf("malformed request: %w", err)
	}
	if req.Method == "" {
		return Request{}, errors.New("malformed request: method is required")
	}
	if req.OpID != "" && !opid.Valid(req.OpID) {
		return Request{}, errors.New("malformed request: op_id must be 1-64 characters of [A-Za-z0-9._-]")
	}
	return req, nil
}
