// Package firecracker is banger's Firecracker driver: it starts
// `firecracker --api-sock SOCK` as the user in a session of its own and
// configures the VM through Firecracker's REST API on that socket —
// logger, metrics, machine, boot source, the root and work drives, the
// tap, vsock — then starts it. The guest's serial console is
// Firecracker's standard output, appended to the VM's console log.
//
// A Driver given only the vmm.Handle of a VM started by an earlier daemon
// describes, stops and kills it: everything it needs is the pid, the
// process start time and the API socket.
package firecracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/vmm"
)

var _ vmm.Driver = (*Driver)(nil)

// DriverName is the name VMs record for this driver.
const DriverName = "firecracker"

// Files the driver keeps in a VM's directory.
const (
	// APISocket is the API socket's name when the spec names none.
	APISocket = "api.sock"
	// LogFile receives Firecracker's own log (PUT /logger) and whatever
	// it writes to stderr before that.
	LogFile = "firecracker.log"
	// MetricsFile receives its metrics, one JSON object per line.
	MetricsFile = "metrics.json"
)

// bootArgs are what a Firecracker guest needs on top of banger's command
// line: a reboot ends Firecracker (reboot=k, and panic=1 turns a panic
// into one), no PCI, and a quick i8042 probe so SendCtrlAltDel works
// (i8042.nopnp is left out on purpose: it breaks SendCtrlAltDel for
// ACPI guests).
const bootArgs = "reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd"

// Timeouts for starting: the socket appears within milliseconds of the
// process starting, and each API call answers in microseconds.
const (
	socketTimeout = 10 * time.Second
	configTimeout = 10 * time.Second
)

// Driver starts and controls Firecracker VMs. The zero value is ready.
type Driver struct {
	// Binary is the firecracker program: a name looked up on PATH, or a
	// path; "" means "firecracker".
	Binary string
	// Wrap, when set, rewrites the command line before it runs (tests run
	// it inside a network namespace). The wrapper must exec the VMM so
	// that the pid started is its own.
	Wrap func(argv []string) []string
}

// Name is "firecracker".
func (d *Driver) Name() string { return DriverName }

// BinaryPath is the firecracker program Start would run, or an error
// saying it is not there.
func (d *Driver) BinaryPath() (string, error) {
	bin := d.Binary
	if bin == "" {
		bin = "firecracker"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("find firecracker (%s): %w", bin, err)
	}
	return p, nil
}

// Requests is the configuration Start sends for spec, in order, before
// InstanceStart: what the driver asks of Firecracker, in one place (the
// benchmark's minimal client sends the same).
func Requests(spec vmm.Spec) []Request {
	reqs := []Request{
		{"/logger", Logger{LogPath: logPath(spec), Level: "Info", ShowLevel: true}},
		{"/metrics", Metrics{MetricsPath: metricsPath(spec)}},
		{"/machine-config", MachineConfig{VCPUCount: spec.VCPUs, MemSizeMib: spec.MemoryMiB}},
		{"/boot-source", BootSource{KernelImagePath: spec.KernelPath, InitrdPath: spec.InitrdPath, BootArgs: strings.TrimSpace(spec.Cmdline + " " + bootArgs)}},
		{"/drives/rootfs", Drive{DriveID: "rootfs", PathOnHost: spec.RootDisk, IsRootDevice: true}},
	}
	if spec.WorkDisk != "" {
		reqs = append(reqs, Request{"/drives/work", Drive{DriveID: "work", PathOnHost: spec.WorkDisk}})
	}
	if spec.Tap != "" {
		reqs = append(reqs, Request{"/network-interfaces/eth0", NetworkInterface{IfaceID: "eth0", HostDevName: spec.Tap, GuestMAC: spec.MAC}})
	}
	if spec.VSockCID >= 3 && spec.VSockPath != "" {
		reqs = append(reqs, Request{"/vsock", Vsock{GuestCID: spec.VSockCID, UDSPath: spec.VSockPath}})
	}
	return reqs
}

// Request is one PUT of the configuration.
type Request struct {
	Path string
	Body any
}

func logPath(spec vmm.Spec) string { return filepath.Join(spec.Dir, LogFile) }

func metricsPath(spec vmm.Spec) string {
	if spec.MetricsPath != "" {
		return spec.MetricsPath
	}
	return filepath.Join(spec.Dir, MetricsFile)
}

func apiSocket(spec vmm.Spec) string {
	if spec.ControlSocket != "" {
		return spec.ControlSocket
	}
	return filepath.Join(spec.Dir, APISocket)
}

// Start runs Firecracker for spec, configures the VM through its API and
// starts it. Firecracker gets a session of its own, /dev/null as stdin,
// the console log as stdout and its log file as stderr, so it outlives
// the caller. Anything that fails kills it and returns a *StartError
// with the end of its log.
func (d *Driver) Start(ctx context.Context, spec vmm.Spec) (vmm.Handle, error) {
	if err := spec.Validate(); err != nil {
		return vmm.Handle{}, err
	}
	bin, err := d.BinaryPath()
	if err != nil {
		return vmm.Handle{}, err
	}
	sock := apiSocket(spec)
	// Firecracker refuses a socket path that exists, for its API and for
	// the vsock's host side (which a previous run leaves behind).
	if err := vmm.RemoveStaleSocket(sock); err != nil {
		return vmm.Handle{}, fmt.Errorf("api socket: %w", err)
	}
	if spec.VSockPath != "" {
		if err := vmm.RemoveStaleSocket(spec.VSockPath); err != nil {
			return vmm.Handle{}, fmt.Errorf("vsock socket: %w", err)
		}
	}
	// Its logger and metrics files must exist before they are named.
	for _, p := range []string{logPath(spec), metricsPath(spec)} {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return vmm.Handle{}, err
		}
		f.Close()
	}
	console, err := os.OpenFile(spec.ConsoleLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return vmm.Handle{}, fmt.Errorf("console log: %w", err)
	}
	defer console.Close()
	logFile, err := os.OpenFile(logPath(spec), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return vmm.Handle{}, err
	}
	defer logFile.Close()
	argv := []string{bin, "--api-sock", sock}
	if d.Wrap != nil {
		argv = d.Wrap(argv)
	}
	fmt.Fprintf(logFile, "%s banger: starting %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	// Watch for the socket before the process can make it.
	watch, err := watchFor(sock)
	if err != nil {
		return vmm.Handle{}, err
	}
	defer watch.Close()

	proc, err := vmm.Spawn(DriverName, argv, spec.Dir, console, logFile, nil, sock)
	if err != nil {
		return vmm.Handle{}, err
	}
	fail := func(cause error) (vmm.Handle, error) {
		proc.Abort()
		os.Remove(sock)
		return vmm.Handle{}, &vmm.StartError{Driver: DriverName, Err: cause, LogName: LogFile, Log: vmm.LogTail(logPath(spec), logStart, 20, 4096)}
	}
	if err := watch.wait(ctx, socketTimeout, proc.Exited); err != nil {
		if errors.Is(err, errExited) {
			err = fmt.Errorf("firecracker exited before opening its API socket (%v)", proc.WaitErr())
		}
		return fail(err)
	}
	cctx, cancel := context.WithTimeout(ctx, configTimeout)
	defer cancel()
	c := NewClient(sock)
	defer c.Close()
	for _, r := range Requests(spec) {
		if err := c.Put(cctx, r.Path, r.Body); err != nil {
			return fail(err)
		}
	}
	if err := c.Action(cctx, ActionInstanceStart); err != nil {
		return fail(err)
	}
	return proc.Handle, nil
}

// checkHandle is vmm.Handle.Check for this driver.
func checkHandle(h vmm.Handle) error { return h.Check(DriverName, "API socket") }

// Stop presses Ctrl+Alt+Del in the guest (SendCtrlAltDel); the guest
// reboots and Firecracker exits. It returns when Firecracker is gone or
// ctx ends, and vmm.ErrExited if it was gone already.
func (d *Driver) Stop(ctx context.Context, h vmm.Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	if !vmm.Alive(h) {
		return vmm.ErrExited
	}
	c := NewClient(h.ControlSocket)
	defer c.Close()
	if err := c.Action(ctx, ActionSendCtrlAltDel); err != nil {
		if !vmm.Alive(h) {
			return nil
		}
		return fmt.Errorf("stop firecracker (pid %d): %w", h.PID, err)
	}
	if err := vmm.Wait(ctx, h); err != nil {
		return fmt.Errorf("firecracker (pid %d) still runs after Ctrl+Alt+Del (the guest kernel needs an i8042 keyboard): %w", h.PID, err)
	}
	return nil
}

// Kill sends Firecracker SIGKILL and waits briefly until it is gone.
func (d *Driver) Kill(h vmm.Handle) error {
	if err := checkHandle(h); err != nil {
		return err
	}
	return vmm.KillAndWait(h)
}

// Describe asks Firecracker for the instance's state (GET /).
func (d *Driver) Describe(ctx context.Context, h vmm.Handle) (vmm.Description, error) {
	desc := vmm.Description{Driver: DriverName, State: vmm.StateUnknown, PID: h.PID}
	if err := checkHandle(h); err != nil {
		return desc, err
	}
	if !vmm.Alive(h) {
		desc.State = vmm.StateExited
		return desc, vmm.ErrExited
	}
	c := NewClient(h.ControlSocket)
	defer c.Close()
	var info InstanceInfo
	if err := c.Get(ctx, "/", &info); err != nil {
		return desc, err
	}
	desc.Detail = info.State
	switch info.State {
	case "Running":
		desc.State = vmm.StateRunning
	case "Paused":
		desc.State = vmm.StatePaused
	}
	return desc, nil
}
