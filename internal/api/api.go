// Package api names the daemon's RPC methods and defines their parameter
// and result types. It is the contract between the CLI and bangerd: both
// import it, neither imports the other.
package api

import (
	"time"

	"banger/internal/helperapi"
	"banger/internal/model"
)

// Daemon methods.
const (
	MethodDaemonPing     = "daemon.ping"
	MethodDaemonStatus   = "daemon.status"
	MethodDaemonShutdown = "daemon.shutdown"
	MethodDaemonDoctor   = "daemon.doctor" // can this host run banger? see DoctorResult
)

// ExitConfig is bangerd's exit status when it will not start on its
// config (a file named that is not there, a bad key or value):
// sysexits' EX_CONFIG. The CLI that started it reports the error as a
// bad request, the user's to fix, rather than as a daemon unavailable.
const ExitConfig = 78

// PingResult says which daemon answered and how long it has run.
type PingResult struct {
	Version         string    `json:"version"`
	ProtocolVersion int       `json:"protocol_version"`
	PID             int       `json:"pid"`
	StartedAt       time.Time `json:"started_at"`
	UptimeSeconds   float64   `json:"uptime_seconds"`
	ConfigPath      string    `json:"config_path"`
	ConfigFound     bool      `json:"config_found"`
	LogLevel        string    `json:"log_level"`
}

// StatusResult answers daemon.status: what daemon.ping says, plus the
// root helper as the daemon sees it and the daemon's tap pool.
type StatusResult struct {
	PingResult
	Helper  HelperStatus  `json:"helper"`
	TapPool TapPoolStatus `json:"tap_pool"`
	VMM     VMMChoice     `json:"vmm"`
}

// VMMChoice is the VMM driver a VM created now gets unless --vmm says
// otherwise: the configured choice, and what `auto` picks on this host
// and why.
type VMMChoice struct {
	Config     string `json:"config"`      // auto, qemu or firecracker
	Driver     string `json:"driver"`      // what Config resolves to
	Auto       string `json:"auto"`        // what auto picks here
	AutoReason string `json:"auto_reason"` // why
}

// HelperStatus is banger-helper as bangerd reached it (or not) just now.
type HelperStatus struct {
	Socket    string `json:"socket"`
	Reachable bool   `json:"reachable"`
	// Error says why the helper is not reachable.
	Error   string               `json:"error,omitempty"`
	Version string               `json:"version,omitempty"`
	Bridge  helperapi.BridgeInfo `json:"bridge,omitzero"`
}

// TapPoolStatus is the daemon's pool of ready taps.
type TapPoolStatus struct {
	Size   int    `json:"size"`
	Ready  int    `json:"ready"`
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	// LastError is why the last refill failed; empty once one succeeds
	// or the pool is full again.
	LastError string `json:"last_error,omitempty"`
}

// ShutdownResult acknowledges daemon.shutdown; the daemon exits after
// sending it.
type ShutdownResult struct {
	PID int `json:"pid"`
}

// Operation methods: the status and cancellation of asynchronous
// operations (image builds, VM creates), whatever began them.
const (
	MethodOperationStatus = "operation.status"
	MethodOperationCancel = "operation.cancel"
)

// Operation event types.
const (
	EventStage  = "stage"  // a stage began
	EventDetail = "detail" // progress within the current stage
	EventDone   = "done"   // the operation finished; see the status's state
)

// OperationEvent is one step of an operation's progress.
type OperationEvent struct {
	Seq      int       `json:"seq"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	Stage    string    `json:"stage,omitempty"`
	Message  string    `json:"message,omitempty"`
	Progress float64   `json:"progress"` // of the whole operation, 0 to 1
}

// OperationStatus is an operation as status reports it: its record, its
// stages, and the events after the sequence number asked for.
type OperationStatus struct {
	model.Operation
	Stages   []string         `json:"stages"`
	Progress float64          `json:"progress"`
	Events   []OperationEvent `json:"events"`
	LastSeq  int              `json:"last_seq"`
}

// OperationStatusParams asks for an operation's status and the events
// after AfterSeq, waiting up to WaitMS (at most 10 s) for one to arrive.
type OperationStatusParams struct {
	ID       string `json:"id"`
	AfterSeq int    `json:"after_seq"`
	WaitMS   int    `json:"wait_ms"`
}

// OperationCancelParams names an operation to cancel.
type OperationCancelParams struct {
	ID string `json:"id"`
}
