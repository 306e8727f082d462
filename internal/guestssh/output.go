package guestssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxStderr is how much of a guest command's standard error an error
// carries.
const maxStderr = 4 << 10

// ErrTooMuch: a guest sent more than it may.
var ErrTooMuch = errors.New("more output than allowed")

// CapWriter passes at most Max bytes on to W; past that, a write fails
// with ErrTooMuch, which ends the session copying into it. It is how
// everything a guest sends is bounded.
type CapWriter struct {
	W   io.Writer
	Max int64
	N   int64
}

func (c *CapWriter) Write(p []byte) (int, error) {
	if c.N+int64(len(p)) > c.Max {
		return 0, fmt.Errorf("%w (%d bytes)", ErrTooMuch, c.Max)
	}
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}

// truncWriter keeps the first max bytes and drops the rest silently: for
// standard error, which only ever decorates a message.
type truncWriter struct {
	buf bytes.Buffer
	max int
}

func (t *truncWriter) Write(p []byte) (int, error) {
	if room := t.max - t.buf.Len(); room > 0 {
		t.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Output runs command on t and returns its standard output, which may
// be at most max bytes. A command that fails returns an error carrying
// (the start of) its standard error.
func (p *Pool) Output(ctx context.Context, t Target, command string, stdin io.Reader, max int64) ([]byte, error) {
	var out bytes.Buffer
	stderr := &truncWriter{max: maxStderr}
	err := p.Run(ctx, t, Cmd{Command: command, Stdin: stdin, Stdout: &CapWriter{W: &out, Max: max}, Stderr: stderr})
	if err != nil {
		if msg := strings.TrimSpace(stderr.buf.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return out.Bytes(), err
	}
	return out.Bytes(), nil
}

// Stderr makes a bounded standard error capture for Cmd, and returns
// what it caught so far.
func Stderr() (io.Writer, func() string) {
	w := &truncWriter{max: maxStderr}
	return w, func() string { return strings.TrimSpace(w.buf.String()) }
}
