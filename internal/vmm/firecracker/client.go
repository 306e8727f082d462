package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// MaxBody is Firecracker's HTTP_MAX_PAYLOAD_SIZE: a larger request body
// is refused with 400.
const MaxBody = 51200

// APIError is a request Firecracker refused: the endpoint, the status
// and Firecracker's fault_message.
type APIError struct {
	Method string
	Path   string
	Status int
	Fault  string
}

func (e *APIError) Error() string {
	msg := e.Fault
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("firecracker %s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// Client calls Firecracker's API on its unix socket. It is a few typed
// calls on net/http, for the endpoints banger uses.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the API socket at path.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialAPI(ctx, socket)
		},
		MaxIdleConns:    1,
		IdleConnTimeout: 5 * time.Second,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// refusedRetry bounds how long a dial retries a socket that exists but
// refuses connections.
const refusedRetry = time.Second

// dialAPI connects to the API socket. Firecracker binds its socket before
// it listens on it, so a socket that has just appeared may refuse a
// connection for a moment: that is retried, briefly, with a growing
// pause (from 50 µs).
func dialAPI(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	pause := 50 * time.Microsecond
	deadline := time.Now().Add(refusedRetry)
	for {
		conn, err := d.DialContext(ctx, "unix", socket)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// Close drops the client's idle connection.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Put sends a PUT of body to path.
func (c *Client) Put(ctx context.Context, path string, body any) error {
	return c.do(ctx, http.MethodPut, path, body, nil)
}

// Get decodes GET path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// Action sends PUT /actions with the action type.
func (c *Client) Action(ctx context.Context, actionType string) error {
	return c.Put(ctx, "/actions", InstanceAction{ActionType: actionType})
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("firecracker %s %s: %w", method, path, err)
		}
		if len(data) > MaxBody {
			return fmt.Errorf("firecracker %s %s: body of %d bytes is over Firecracker's %d", method, path, len(data), MaxBody)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, rd)
	if err != nil {
		return fmt.Errorf("firecracker %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("firecracker %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("firecracker %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var f faultBody
		json.Unmarshal(data, &f)
		if f.FaultMessage == "" {
			f.FaultMessage = string(bytes.TrimSpace(data))
		}
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Fault: f.FaultMessage}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("firecracker %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// IsAPIError reports whether err is a refusal from Firecracker (as
// opposed to a connection that failed).
func IsAPIError(err error) bool {
	var e *APIError
	return errors.As(err, &e)
}
