// Package api names the daemon's RPC methods and defines their parameter
// and result types. It is the contract between the CLI and bangerd: both
// import it, neither imports the other.
package api

import "time"

// Daemon methods.
const (
	MethodDaemonPing     = "daemon.ping"
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

// ShutdownResult acknowledges daemon.shutdown; the daemon exits after
// sending it.
type ShutdownResult struct {
	PID int `json:"pid"`
}
