package rpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Frame size caps. A request is small (a method and a few parameters);
// a response may carry a listing of many VMs.
const (
	DefaultMaxRequestBytes  = 1 << 20
	DefaultMaxResponseBytes = 64 << 20
)

var errFrameTooLarge = errors.New("frame too large")

// readFrame reads one newline-terminated frame of at most max bytes (the
// newline excluded). A longer frame returns errFrameTooLarge; the stream
// can not be resynchronised after it, so callers close the connection.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	var frame []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(frame)+len(chunk) > max+1 {
			return nil, errFrameTooLarge
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
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
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
	if req.OpID != "" && !validOpID(req.OpID) {
		return Request{}, errors.New("malformed request: op_id must be 1-64 characters of [A-Za-z0-9._-]")
	}
	return req, nil
}
