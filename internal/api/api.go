// Package api names the daemon's RPC methods and defines their parameter
// and result types. It is the contract between the CLI and bangerd: both
// import it, neither imports the other.
package api

import (
	"time"

	"banger/internal/helperapi"
)

// Daemon methods.
const (
	MethodDaemonPing     = "daemon.ping"
	MethodDaemonStatus   = "daemon.status"
	MethodDaemonShutdown = "daemon.shutdown"
)

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
