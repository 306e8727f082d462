// Package fcdouble is a test double of Firecracker v1.16.1: a program
// named `firecracker` that serves Firecracker's REST API on the socket
// given by --api-sock, holds every request to Firecracker's own API
// definition and rules, and on InstanceStart boots the configured
// kernel, initrd, drives and tap for real with QEMU (-M microvm), exiting
// when the guest does, as Firecracker does.
//
// It is strict where Firecracker is strict: unknown fields, wrong types
// and values outside an enum are refused; bodies over 51200 bytes are
// refused; pre-boot calls after InstanceStart and runtime calls before it
// are refused; InstanceStart needs a boot source (an ELF kernel) and at
// most one root drive; files named by the logger, metrics, boot source
// and drives must exist, the tap must be there and usable, the vsock
// socket path must not. Errors are {"fault_message": ...} with status
// 400, as Firecracker answers them.
//
// Every request is appended to a record (JSON lines, see Call) so tests
// can assert on what a driver sent.
package fcdouble

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxPayload is Firecracker's default HTTP_MAX_PAYLOAD_SIZE.
const MaxPayload = 51200

// Version is the Firecracker version the double stands for.
const Version = "1.16.1"

// Messages Firecracker answers with.
const (
	msgAfterStart  = "The requested operation is not supported after starting the microVM."
	msgBeforeStart = "The requested operation is not supported before starting the microVM."
)

// Call is one request as the record keeps it.
type Call struct {
	// Time is when the request was received (its headers read).
	Time   time.Time       `json:"time"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
	// BodySize is the body's length, also when it was too big to keep.
	BodySize int    `json:"body_size"`
	Status   int    `json:"status"`
	Fault    string `json:"fault,omitempty"`
}

// Config is what the double is started with.
type Config struct {
	API         *API
	ID          string // --id
	MaxPayload  int    // --http-api-max-payload-size
	Record      string // where calls are appended; "" for none
	Log         io.Writer
	QEMU        string // qemu-system-x86_64
	MetricsTick time.Duration
}

// Double is the API server and the VM it configures.
type Double struct {
	cfg       Config
	startedAt time.Time

	mu      sync.Mutex // one request at a time, as Firecracker's API thread
	started bool
	vm      vmConfig
	logger  *fileLogger
	metrics *metricsWriter
	vsock   *vsockProxy
	machine *machine
	counts  map[string]uint64 // requests by kind, since the last metrics line
	record  *os.File
	recMu   sync.Mutex

	// Exited is closed when the guest's VM has ended; ExitCode is then
	// the process's exit code.
	Exited   chan struct{}
	ExitCode int
}

// New makes a double; Serve runs it.
func New(cfg Config) (*Double, error) {
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = MaxPayload
	}
	if cfg.ID == "" {
		cfg.ID = "anonymous-instance"
	}
	if cfg.MetricsTick == 0 {
		cfg.MetricsTick = time.Minute
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	d := &Double{
		cfg:       cfg,
		startedAt: time.Now(),
		vm:        vmConfig{Machine: machineConfig{VCPUCount: 1, MemSizeMib: 128}},
		counts:    map[string]uint64{},
		Exited:    make(chan struct{}),
	}
	d.logger = &fileLogger{w: cfg.Log, level: levelInfo, id: cfg.ID}
	if cfg.Record != "" {
		f, err := os.OpenFile(cfg.Record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		d.record = f
	}
	return d, nil
}

// Serve answers API requests on l until the VM ends.
func (d *Double) Serve(l net.Listener) error {
	d.logger.log(levelInfo, "Running Firecracker test double v"+Version)
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeHTTP handles one request: size, route, body, state, then the
// operation itself.
func (d *Double) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: time.Now(), Method: r.Method, Path: r.URL.Path}
	status, body, fault := d.handle(r, &call)
	call.Status, call.Fault = status, fault
	if fault != "" {
		body, _ = json.Marshal(map[string]string{"fault_message": fault})
		d.logger.log(levelError, fmt.Sprintf("[%s %s] %s", r.Method, r.URL.Path, fault))
	}
	d.writeRecord(call)
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	if body != nil {
		w.Write(body)
	}
}

func (d *Double) handle(r *http.Request, call *Call) (int, []byte, string) {
	if r.ContentLength > int64(d.cfg.MaxPayload) {
		call.BodySize = int(r.ContentLength)
		io.Copy(io.Discard, io.LimitReader(r.Body, r.ContentLength))
		return 400, nil, fmt.Sprintf("Request payload with size %d is larger than the limit of %d allowed by server.", r.ContentLength, d.cfg.MaxPayload)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, int64(d.cfg.MaxPayload)+1))
	if err != nil {
		return 400, nil, "Invalid request: " + err.Error()
	}
	call.BodySize = len(raw)
	if len(raw) > d.cfg.MaxPayload {
		return 400, nil, fmt.Sprintf("Request payload with size %d is larger than the limit of %d allowed by server.", len(raw), d.cfg.MaxPayload)
	}
	if json.Valid(raw) {
		call.Body = raw
	}
	op, tmpl, params := d.cfg.API.Route(r.Method, r.URL.Path)
	if op == nil {
		return 400, nil, fmt.Sprintf("Invalid request method and/or path: %s %s.", r.Method, r.URL.Path)
	}
	if err := d.cfg.API.ValidateBody(op, raw); err != nil {
		return 400, nil, err.Error()
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	key := strings.ToLower(r.Method) + " " + tmpl
	if key == "put /actions" {
		var a struct {
			ActionType string `json:"action_type"`
		}
		json.Unmarshal(raw, &a)
		key += " " + a.ActionType
	}
	d.counts[key]++
	if d.started && !allowedAfterStart[key] {
		return 400, nil, msgAfterStart
	}
	if !d.started && runtimeOnly[key] {
		return 400, nil, msgBeforeStart
	}
	h, ok := handlers[key]
	if !ok {
		return 400, nil, fmt.Sprintf("the Firecracker test double does not implement %s %s", r.Method, tmpl)
	}
	status, out, err := h(d, params, raw)
	if err != nil {
		return 400, nil, err.Error()
	}
	return status, out, ""
}

// allowedAfterStart are the calls Firecracker's runtime controller takes;
// every other one is pre-boot only.
var allowedAfterStart = map[string]bool{
	"get /": true, "get /machine-config": true, "get /vm/config": true, "get /version": true,
	"get /balloon": true, "get /balloon/statistics": true, "get /mmds": true, "get /hotplug/memory": true,
	"patch /drives/{drive_id}": true, "patch /network-interfaces/{iface_id}": true, "patch /pmem/{id}": true,
	"patch /vm": true, "put /snapshot/create": true, "patch /balloon": true, "patch /balloon/statistics": true,
	"put /mmds": true, "patch /mmds": true, "patch /hotplug/memory": true,
	"put /balloon/hinting/start": true, "get /balloon/hinting/status": true, "put /balloon/hinting/stop": true,
	"put /actions FlushMetrics": true, "put /actions SendCtrlAltDel": true,
}

// runtimeOnly are the calls refused before InstanceStart.
var runtimeOnly = map[string]bool{
	"patch /drives/{drive_id}": true, "patch /network-interfaces/{iface_id}": true, "patch /vm": true,
	"put /snapshot/create": true, "patch /balloon": true, "patch /balloon/statistics": true,
	"put /actions SendCtrlAltDel": true, "patch /hotplug/memory": true,
}

type handler func(d *Double, params map[string]string, body []byte) (int, []byte, error)

var handlers = map[string]handler{
	"get /":                                (*Double).describe,
	"get /version":                         (*Double).version,
	"get /machine-config":                  (*Double).getMachineConfig,
	"get /vm/config":                       (*Double).getVMConfig,
	"put /logger":                          (*Double).putLogger,
	"put /metrics":                         (*Double).putMetrics,
	"put /machine-config":                  (*Double).putMachineConfig,
	"put /boot-source":                     (*Double).putBootSource,
	"put /drives/{drive_id}":               (*Double).putDrive,
	"put /network-interfaces/{iface_id}":   (*Double).putIface,
	"put /vsock":                           (*Double).putVsock,
	"put /actions InstanceStart":           (*Double).instanceStart,
	"put /actions SendCtrlAltDel":          (*Double).sendCtrlAltDel,
	"put /actions FlushMetrics":            (*Double).flushMetrics,
	"patch /vm":                            (*Double).patchVM,
	"patch /drives/{drive_id}":             (*Double).patchDrive,
	"patch /network-interfaces/{iface_id}": (*Double).patchIface,
}

func jsonBody(v any) (int, []byte, error) {
	b, err := json.Marshal(v)
	return 200, b, err
}

var noContent = func() (int, []byte, error) { return 204, nil, nil }

func (d *Double) state() string {
	switch {
	case d.machine != nil && d.machine.paused:
		return "Paused"
	case d.started:
		return "Running"
	}
	return "Not started"
}

func (d *Double) describe(map[string]string, []byte) (int, []byte, error) {
	return jsonBody(map[string]string{"id": d.cfg.ID, "state": d.state(), "vmm_version": Version, "app_name": "Firecracker"})
}

func (d *Double) version(map[string]string, []byte) (int, []byte, error) {
	return jsonBody(map[string]string{"firecracker_version": Version})
}

func (d *Double) writeRecord(c Call) {
	if d.record == nil {
		return
	}
	b, _ := json.Marshal(c)
	d.recMu.Lock()
	d.record.Write(append(b, '\n'))
	d.recMu.Unlock()
}

// Shutdown stops the VM, if one runs, and closes what the double holds.
func (d *Double) Shutdown() {
	d.mu.Lock()
	m := d.machine
	d.mu.Unlock()
	if m != nil {
		m.kill()
	}
	if d.vsock != nil {
		d.vsock.Close()
	}
}

// osErr renders an error as Firecracker does: "No such file or
// directory (os error 2)".
func osErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	msg := err.Error()
	if len(msg) > 0 {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg += fmt.Sprintf(" (os error %d)", int(errno))
	}
	return msg
}

// fault is an error whose text is a Firecracker fault message, worded
// (capitals, full stops) as Firecracker words it.
type fault string

func (f fault) Error() string { return string(f) }

// faultf formats a fault message.
func faultf(format string, args ...any) error {
	if len(args) == 0 {
		return fault(format)
	}
	return fault(fmt.Sprintf(format, args...))
}
