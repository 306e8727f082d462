package daemon

import (
	"context"
	"math"
	"os"
	"time"

	"banger/internal/api"
	"banger/internal/buildinfo"
	"banger/internal/rpc"
)

func (d *Daemon) ping(ctx context.Context, _ rpc.NoParams) (api.PingResult, error) {
	return api.PingResult{
		Version:         buildinfo.Version(),
		ProtocolVersion: buildinfo.ProtocolVersion,
		PID:             os.Getpid(),
		StartedAt:       d.started.UTC().Truncate(time.Second),
		UptimeSeconds:   math.Round(time.Since(d.started).Seconds()*10) / 10,
		ConfigPath:      d.layout.ConfigFile,
		ConfigFound:     d.configFound,
		LogLevel:        d.logLevel,
	}, nil
}

// shutdownDaemon answers first and stops after: the server drains
// in-flight requests, this one included, before Serve returns.
func (d *Daemon) shutdownDaemon(ctx context.Context, _ rpc.NoParams) (api.ShutdownResult, error) {
	op := d.beginOperation(ctx, "daemon.shutdown")
	d.shutdown()
	op.done()
	return api.ShutdownResult{PID: os.Getpid()}, nil
}
