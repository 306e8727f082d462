package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// QMP is a client connection to a QEMU Machine Protocol monitor: a
// stream of JSON objects, one per line, over a unix socket. QEMU opens
// with a greeting, accepts commands only after qmp_capabilities, answers
// each command with "return" or "error" carrying the command's id, and
// sends asynchronous events ("event") at any point in between, which
// this client skips. One command is in flight at a time.
//
// A QEMU monitor serves one client at a time; a second connection waits
// until the first closes, so callers hold a QMP only for what they ask.
type QMP struct {
	conn net.Conn
	dec  *json.Decoder
	// Version is QEMU's version from the greeting, "7.2.22".
	Version string

	mu     sync.Mutex
	nextID uint64
	broken error // set when a cancelled call left the stream mid-message
}

// QMPError is an error reply: QEMU's error class ("GenericError",
// "CommandNotFound", "DeviceNotActive", ...) and its description.
type QMPError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *QMPError) Error() string { return e.Class + ": " + e.Desc }

// qmpMessage is any message QEMU sends.
type qmpMessage struct {
	Greeting *struct {
		Version struct {
			QEMU struct {
				Major, Minor, Micro int
			} `json:"qemu"`
		} `json:"version"`
	} `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *QMPError       `json:"error"`
	Event  string          `json:"event"`
	ID     json.RawMessage `json:"id"`
}

// DialQMP connects to the monitor at path, reads the greeting and leaves
// capabilities negotiation, so the connection is ready for commands. ctx
// bounds the whole exchange.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	q, err := NewQMP(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// NewQMP speaks QMP on conn: it reads the greeting and sends
// qmp_capabilities. On error the caller still owns conn.
func NewQMP(ctx context.Context, conn net.Conn) (*QMP, error) {
	q := &QMP{conn: conn, dec: json.NewDecoder(conn)}
	err := q.withContext(ctx, func() error {
		var m qmpMessage
		if err := q.dec.Decode(&m); err != nil {
			return fmt.Errorf("read greeting: %w", err)
		}
		if m.Greeting == nil {
			return errors.New("the peer did not greet as a QMP monitor")
		}
		v := m.Greeting.Version.QEMU
		q.Version = fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	if err := q.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		return nil, err
	}
	return q, nil
}

// Execute runs command with args (nil for none) and decodes its
// "return" into result (nil to ignore it). An error reply is a
// *QMPError, wrapped with the command's name.
func (q *QMP) Execute(ctx context.Context, command string, args, result any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.broken != nil {
		return fmt.Errorf("qmp %s: connection unusable after an earlier call: %w", command, q.broken)
	}
	q.nextID++
	id := "banger-" + strconv.FormatUint(q.nextID, 10)
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	wantID, _ := json.Marshal(id)
	var reply qmpMessage
	err = q.withContext(ctx, func() error {
		if _, err := q.conn.Write(append(data, '\n')); err != nil {
			return err
		}
		for {
			reply = qmpMessage{}
			if err := q.dec.Decode(&reply); err != nil {
				return err
			}
			if reply.Event != "" {
				continue // asynchronous; nothing here waits for events
			}
			if !bytes.Equal(reply.ID, wantID) {
				continue // a reply to a call abandoned earlier
			}
			return nil
		}
	})
	if err != nil {
		q.broken = err
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	if reply.Error != nil {
		return fmt.Errorf("qmp %s: %w", command, reply.Error)
	}
	if reply.Return == nil {
		return fmt.Errorf("qmp %s: reply has neither return nor error", command)
	}
	if result != nil {
		if err := json.Unmarshal(reply.Return, result); err != nil {
			return fmt.Errorf("qmp %s: decode reply: %w", command, err)
		}
	}
	return nil
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }

// withContext runs fn with the connection's deadline set from ctx, and
// interrupts its I/O if ctx is cancelled; the error is then ctx's.
func (q *QMP) withContext(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline, hasDeadline := ctx.Deadline()
	q.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { q.conn.SetDeadline(time.Unix(1, 0)) })
	err := fn()
	stop()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		// The socket's deadline can fire a moment before ctx's timer.
		if hasDeadline && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline) {
			return context.DeadlineExceeded
		}
	}
	return err
}
