package rpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"banger/internal/buildinfo"
	"banger/internal/opid"
)

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 30 * time.Second

// Call sends one request to the server at socketPath and decodes its
// result into result (which may be nil). The op id on ctx, if any, is
// forwarded, so the server and everything it calls log under the same
// id. A refused call returns a *ErrorResponse (use errors.As for its
// code and op id; errors.Is against errdefs sentinels also works).
func Call(ctx context.Context, socketPath, method string, params, result any) error {
	return call(ctx, socketPath, method, params, result, nil)
}

// CallWithFiles is Call that passes open files with the request
// (SCM_RIGHTS); the server's handler finds them with FilesFromContext.
// The caller keeps its own copies and closes them when it likes.
func CallWithFiles(ctx context.Context, socketPath, method string, params, result any, files ...*os.File) error {
	return call(ctx, socketPath, method, params, result, files)
}

func call(ctx context.Context, socketPath, method string, params, result any, files []*os.File) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("%s: %d files in one request; at most %d", method, len(files), MaxFiles)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", socketPath, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	} else {
		conn.SetDeadline(time.Now().Add(DefaultCallTimeout))
	}
	// Unblock the read if ctx is cancelled before the answer arrives.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	req := Request{Version: buildinfo.ProtocolVersion, Method: method, OpID: opid.From(ctx)}
	if params != nil {
		raw, err := fastjson.Marshal(params)
		if err != nil {
			return fmt.Errorf("encode %s params: %w", method, err)
		}
		req.Params = raw
	}
	// A server that refuses the connection may answer and close before
	// it reads everything; its answer is still worth reading.
	writeErr := writeFrameFiles(conn, req, files)

	frame, err := readFrame(bufio.NewReader(conn), DefaultMaxResponseBytes)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", method, ctx.Err())
		}
		// The socket deadline copies ctx's, and may fire a moment before
		// ctx reports it: say what the caller asked for, not i/o timeout.
		var ne net.Error
		if deadline, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(deadline) {
			return fmt.Errorf("%s: %w", method, context.DeadlineExceeded)
		}
		if writeErr != nil {
			return fmt.Errorf("%s: send request: %w", method, writeErr)
		}
		return fmt.Errorf("%s: read response: %w", method, err)
	}
	var resp Response
	// The frame is this call's own and never reused: the result and its
	// strings may point into it rather than be copied out.
	rest, err := fastjson.Parse(frame, &resp, fastjson.ZeroCopy)
	if err == nil && len(bytes.TrimSpace(rest)) > 0 {
		err = errors.New("trailing data after the JSON value")
	}
	if err != nil {
		return fmt.Errorf("%s: malformed response: %w", method, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if result != nil && len(resp.Result) > 0 {
		if _, err := fastjson.Parse(resp.Result, result, fastjson.ZeroCopy); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
	}
	return nil
}

// IsNotListening reports whether err means nothing is serving the socket:
// it does not exist, or it is a leftover of a process that died.
func IsNotListening(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}
