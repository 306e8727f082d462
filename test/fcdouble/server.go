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

// vmConfig is the configuration so far, in Firecracker's JSON shapes.
type vmConfig struct {
	Boot    *bootSource
	Machine machineConfig
	Drives  []drive // in insertion order
	Ifaces  []netIface
	Vsock   *vsockConfig
	Logger  *loggerConfig
	Metrics *metricsConfig
}

type bootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	InitrdPath      string `json:"initrd_path,omitempty"`
	BootArgs        string `json:"boot_args,omitempty"`
}

type machineConfig struct {
	VCPUCount       int    `json:"vcpu_count"`
	MemSizeMib      int    `json:"mem_size_mib"`
	SMT             bool   `json:"smt"`
	TrackDirtyPages bool   `json:"track_dirty_pages"`
	HugePages       string `json:"huge_pages,omitempty"`
}

type drive struct {
	DriveID      string `json:"drive_id"`
	PathOnHost   string `json:"path_on_host,omitempty"`
	IsRootDevice bool   `json:"is_root_device"`
	IsReadOnly   bool   `json:"is_read_only"`
	CacheType    string `json:"cache_type,omitempty"`
	IOEngine     string `json:"io_engine,omitempty"`
	PartUUID     string `json:"partuuid,omitempty"`
	Socket       string `json:"socket,omitempty"`
}

type netIface struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
	GuestMAC    string `json:"guest_mac,omitempty"`
}

type vsockConfig struct {
	GuestCID uint32 `json:"guest_cid"`
	UDSPath  string `json:"uds_path"`
}

type loggerConfig struct {
	LogPath       string `json:"log_path,omitempty"`
	Level         string `json:"level,omitempty"`
	ShowLevel     bool   `json:"show_level,omitempty"`
	ShowLogOrigin bool   `json:"show_log_origin,omitempty"`
	Module        string `json:"module,omitempty"`
}

type metricsConfig struct {
	MetricsPath string `json:"metrics_path"`
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

func (d *Double) getMachineConfig(map[string]string, []byte) (int, []byte, error) {
	return jsonBody(d.vm.Machine)
}

func (d *Double) getVMConfig(map[string]string, []byte) (int, []byte, error) {
	drives := d.vm.Drives
	if drives == nil {
		drives = []drive{}
	}
	ifaces := d.vm.Ifaces
	if ifaces == nil {
		ifaces = []netIface{}
	}
	return jsonBody(map[string]any{
		"boot-source": d.vm.Boot, "machine-config": d.vm.Machine, "drives": drives,
		"network-interfaces": ifaces, "vsock": d.vm.Vsock, "logger": d.vm.Logger, "metrics": d.vm.Metrics,
	})
}

// openExisting opens a file that must already exist, for appending, as
// Firecracker opens its logger and metrics destinations.
func openExisting(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
}

func (d *Double) putLogger(_ map[string]string, body []byte) (int, []byte, error) {
	var c loggerConfig
	json.Unmarshal(body, &c)
	lvl := levelInfo
	if c.Level != "" {
		lvl = parseLevel(c.Level)
	}
	if c.LogPath != "" {
		f, err := openExisting(c.LogPath)
		if err != nil {
			return 0, nil, faultf("Logger error: Failed to open target file: %s", osErr(err))
		}
		d.logger.setFile(f)
	}
	d.logger.configure(lvl, c.ShowLevel, c.ShowLogOrigin)
	d.vm.Logger = &c
	d.logger.log(levelInfo, "API server received a logger configuration")
	return noContent()
}

func (d *Double) putMetrics(_ map[string]string, body []byte) (int, []byte, error) {
	var c metricsConfig
	json.Unmarshal(body, &c)
	if d.metrics != nil {
		return 0, nil, faultf("Metrics error: Reinitialization of metrics not allowed.")
	}
	f, err := openExisting(c.MetricsPath)
	if err != nil {
		return 0, nil, faultf("Metrics error: Failed to open target file: %s", osErr(err))
	}
	d.metrics = newMetricsWriter(f, d)
	d.vm.Metrics = &c
	go d.metrics.tick(d.cfg.MetricsTick)
	return noContent()
}

func (d *Double) putMachineConfig(_ map[string]string, body []byte) (int, []byte, error) {
	var c machineConfig
	json.Unmarshal(body, &c)
	if c.MemSizeMib == 0 {
		return 0, nil, faultf("The memory size (MiB) is either 0, or not a multiple of the configured page size.")
	}
	if c.SMT && c.VCPUCount > 1 && c.VCPUCount%2 == 1 {
		return 0, nil, faultf("The number of vCPUs must be 1 or an even number when SMT is enabled.")
	}
	d.vm.Machine = c
	return noContent()
}

func (d *Double) putBootSource(_ map[string]string, body []byte) (int, []byte, error) {
	var c bootSource
	json.Unmarshal(body, &c)
	f, err := os.Open(c.KernelImagePath)
	if err != nil {
		return 0, nil, faultf("Boot source error: The kernel file cannot be opened: %s", osErr(err))
	}
	f.Close()
	if c.InitrdPath != "" {
		f, err := os.Open(c.InitrdPath)
		if err != nil {
			return 0, nil, faultf("Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. %s", osErr(err))
		}
		f.Close()
	}
	d.vm.Boot = &c
	return noContent()
}

func (d *Double) putDrive(params map[string]string, body []byte) (int, []byte, error) {
	var c drive
	json.Unmarshal(body, &c)
	if c.DriveID != params["drive_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["drive_id"], c.DriveID)
	}
	if c.Socket != "" {
		return 0, nil, faultf("the Firecracker test double does not implement vhost-user block devices")
	}
	if c.PathOnHost == "" {
		return 0, nil, faultf("Unable to create the block device: path_on_host is required for a virtio block device")
	}
	flag := os.O_RDWR
	if c.IsReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(c.PathOnHost, flag, 0)
	if err != nil {
		return 0, nil, faultf("Unable to create the block device: VirtioBlock(BackingFile(%s, %q))", osErr(err), c.PathOnHost)
	}
	f.Close()
	i := -1
	for j, dr := range d.vm.Drives {
		if dr.DriveID == c.DriveID {
			i = j
		} else if dr.IsRootDevice && c.IsRootDevice {
			return 0, nil, faultf("A root block device already exists!")
		}
	}
	if i >= 0 {
		d.vm.Drives[i] = c
	} else {
		d.vm.Drives = append(d.vm.Drives, c)
	}
	return noContent()
}

func (d *Double) putIface(params map[string]string, body []byte) (int, []byte, error) {
	var c netIface
	json.Unmarshal(body, &c)
	if c.IfaceID != params["iface_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["iface_id"], c.IfaceID)
	}
	if c.GuestMAC != "" {
		if hw, err := net.ParseMAC(c.GuestMAC); err != nil || len(hw) != 6 {
			return 0, nil, faultf("An error occurred when deserializing the json body of a request: invalid MAC address %q", c.GuestMAC)
		}
	}
	for _, o := range d.vm.Ifaces {
		if o.IfaceID == c.IfaceID {
			continue
		}
		if o.HostDevName == c.HostDevName {
			return 0, nil, faultf("Could not create the network device: The host device name %s is already in use.", c.HostDevName)
		}
		if c.GuestMAC != "" && strings.EqualFold(o.GuestMAC, c.GuestMAC) {
			return 0, nil, faultf("Could not create the network device: The guest MAC address %s is already in use.", c.GuestMAC)
		}
	}
	if err := probeTap(c.HostDevName); err != nil {
		return 0, nil, faultf("Could not create the network device: Open tap device failed: %v", err)
	}
	replaced := false
	for i, o := range d.vm.Ifaces {
		if o.IfaceID == c.IfaceID {
			d.vm.Ifaces[i], replaced = c, true
		}
	}
	if !replaced {
		d.vm.Ifaces = append(d.vm.Ifaces, c)
	}
	return noContent()
}

func (d *Double) putVsock(_ map[string]string, body []byte) (int, []byte, error) {
	var c vsockConfig
	json.Unmarshal(body, &c)
	if d.vsock != nil {
		d.vsock.Close()
		d.vsock = nil
	}
	p, err := listenVsock(c.UDSPath, c.GuestCID, d.logger)
	if err != nil {
		return 0, nil, faultf("Cannot create backend for vsock device: Error binding to the host-side Unix socket: %s", osErr(err))
	}
	d.vsock = p
	d.vm.Vsock = &c
	return noContent()
}

func (d *Double) instanceStart(map[string]string, []byte) (int, []byte, error) {
	if d.vm.Boot == nil {
		return 0, nil, faultf("Start microvm error: Cannot start microvm without kernel configuration.")
	}
	roots := 0
	for _, dr := range d.vm.Drives {
		if dr.IsRootDevice {
			roots++
		}
	}
	if roots > 1 {
		return 0, nil, faultf("Start microvm error: A root block device already exists!")
	}
	if err := checkELF(d.vm.Boot.KernelImagePath); err != nil {
		return 0, nil, faultf("Start microvm error: Cannot load kernel due to invalid memory configuration or invalid kernel image: %v", err)
	}
	m, err := startMachine(d.cfg.QEMU, d.vm, d.logger)
	if err != nil {
		return 0, nil, faultf("Start microvm error: %v", err)
	}
	d.machine = m
	d.started = true
	if d.vsock != nil {
		d.vsock.setReady()
	}
	d.logger.log(levelInfo, "Successfully started microvm that was configured from one single json")
	go d.watchMachine(m)
	return noContent()
}

// watchMachine ends the process's life with the guest's: Firecracker
// exits when its guest powers off or resets.
func (d *Double) watchMachine(m *machine) {
	code := m.wait()
	d.mu.Lock()
	if d.metrics != nil {
		d.metrics.write()
	}
	d.logger.log(levelInfo, fmt.Sprintf("Vmm is stopping. (guest exit, qemu %s)", m.exitDesc))
	d.ExitCode = code
	d.mu.Unlock()
	close(d.Exited)
}

func (d *Double) sendCtrlAltDel(map[string]string, []byte) (int, []byte, error) {
	if err := d.machine.ctrlAltDel(); err != nil {
		return 0, nil, faultf("Internal error while executing an action: %v", err)
	}
	d.logger.log(levelInfo, "Sent Ctrl+Alt+Del to the guest")
	return noContent()
}

func (d *Double) flushMetrics(map[string]string, []byte) (int, []byte, error) {
	if d.metrics == nil {
		return 0, nil, faultf("Metrics error: The metrics system was not initialized.")
	}
	d.metrics.write()
	return noContent()
}

func (d *Double) patchVM(_ map[string]string, body []byte) (int, []byte, error) {
	var c struct {
		State string `json:"state"`
	}
	json.Unmarshal(body, &c)
	if err := d.machine.setPaused(c.State == "Paused"); err != nil {
		return 0, nil, faultf("Internal error while executing an action: %v", err)
	}
	return noContent()
}

func (d *Double) patchDrive(params map[string]string, body []byte) (int, []byte, error) {
	var c struct {
		DriveID    string `json:"drive_id"`
		PathOnHost string `json:"path_on_host"`
	}
	json.Unmarshal(body, &c)
	if c.DriveID != params["drive_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["drive_id"], c.DriveID)
	}
	for _, dr := range d.vm.Drives {
		if dr.DriveID == c.DriveID {
			if c.PathOnHost != "" {
				return 0, nil, faultf("the Firecracker test double does not implement swapping a drive's backing file")
			}
			return noContent()
		}
	}
	return 0, nil, faultf("Unable to patch the block device: Invalid block device ID: %s", c.DriveID)
}

func (d *Double) patchIface(params map[string]string, body []byte) (int, []byte, error) {
	var c struct {
		IfaceID string `json:"iface_id"`
	}
	json.Unmarshal(body, &c)
	if c.IfaceID != params["iface_id"] {
		return 0, nil, faultf("The id from the path [%s] does not match the id from the body [%s]!", params["iface_id"], c.IfaceID)
	}
	for _, o := range d.vm.Ifaces {
		if o.IfaceID == c.IfaceID {
			return noContent()
		}
	}
	return 0, nil, faultf("Unable to update the net device: Invalid network interface ID: %s", c.IfaceID)
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
