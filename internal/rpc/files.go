package rpc

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// MaxFiles is the most open files one request may carry. More are
// refused (the kernel closes the ones that do not fit).
const MaxFiles = 4

type filesKey struct{}

// FilesFromContext returns the open files sent with the request being
// served (SCM_RIGHTS), in the order the client passed them. The server
// closes them once the handler returns: a handler that must keep one
// longer duplicates it.
func FilesFromContext(ctx context.Context) []*os.File {
	f, _ := ctx.Value(filesKey{}).([]*os.File)
	return f
}

func withFiles(ctx context.Context, files []*os.File) context.Context {
	return context.WithValue(ctx, filesKey{}, files)
}

// fileReader reads a unix stream connection and keeps the descriptors
// that arrive with its bytes. Clients send one request at a time and
// wait for its answer, so the descriptors received while a frame is read
// belong to that frame.
type fileReader struct {
	conn      *net.UnixConn
	oob       []byte
	files     []*os.File
	truncated bool
}

func newFileReader(c *net.UnixConn) *fileReader {
	return &fileReader{conn: c, oob: make([]byte, unix.CmsgSpace(MaxFiles*4))}
}

func (r *fileReader) Read(p []byte) (int, error) {
	n, oobn, flags, _, err := r.conn.ReadMsgUnix(p, r.oob)
	if flags&unix.MSG_CTRUNC != 0 {
		r.truncated = true
	}
	if oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(r.oob[:oobn])
		if perr != nil {
			r.truncated = true
		}
		for i := range msgs {
			if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
				continue
			}
			fds, perr := unix.ParseUnixRights(&msgs[i])
			if perr != nil {
				r.truncated = true
				continue
			}
			for _, fd := range fds {
				// Go receives them with MSG_CMSG_CLOEXEC: nothing the
				// handler starts inherits them.
				r.files = append(r.files, os.NewFile(uintptr(fd), fmt.Sprintf("rpc-fd-%d", fd)))
			}
		}
	}
	switch {
	case n < 0:
		n = 0
	case n == 0 && err == nil && len(p) > 0:
		err = io.EOF // recvmsg's 0 on a stream socket: the peer hung up
	}
	return n, err
}

// take hands over the files received so far; truncated reports that
// some could not be received (too many, or a malformed message).
func (r *fileReader) take() (files []*os.File, truncated bool) {
	if r == nil {
		return nil, false
	}
	files, truncated = r.files, r.truncated || len(r.files) > MaxFiles
	r.files, r.truncated = nil, false
	return files, truncated
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// writeFrameFiles writes v as one JSON line with files attached to its
// first byte.
func writeFrameFiles(conn net.Conn, v any, files []*os.File) error {
	if len(files) == 0 {
		return writeFrame(conn, v)
	}
	if len(files) > MaxFiles {
		return fmt.Errorf("%d files in one request; at most %d", len(files), MaxFiles)
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("files can only be sent over a unix socket")
	}
	data, err := encodeFrame(getBuf(), v)
	defer putBuf(data)
	if err != nil {
		return err
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	n, _, err := uc.WriteMsgUnix(data, unix.UnixRights(fds...), nil)
	runtime.KeepAlive(files)
	if err != nil {
		return err
	}
	if n < len(data) {
		_, err = uc.Write(data[n:])
	}
	return err
}
