package daemon

import (
	"context"
	"math"
	"os"
	"time"

	"banger/internal/api"
	"banger/internal/buildinfo"
	"banger/internal/doctor"
	"banger/internal/oplog"
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

// status is daemon.ping plus the root helper, asked just now, the tap
// pool and the VMM a VM created now gets.
func (d *Daemon) status(ctx context.Context, _ rpc.NoParams) (api.StatusResult, error) {
	ping, err := d.ping(ctx, rpc.NoParams{})
	if err != nil {
		return api.StatusResult{}, err
	}
	res := api.StatusResult{PingResult: ping, Helper: d.helperStatus(ctx), TapPool: d.tapPoolStatus()}
	if d.vms != nil {
		res.VMM = d.vms.Choice()
	}
	return res, nil
}

// helperStatus asks the helper who it is, briefly. The call carries the
// request's op id, so a failure can be found in the helper's log too.
func (d *Daemon) helperStatus(ctx context.Context) api.HelperStatus {
	hs := api.HelperStatus{Socket: d.helper.Socket}
	ctx, cancel := context.WithTimeout(ctx, doctor.HelperTimeout)
	defer cancel()
	st, err := d.helper.Status(ctx)
	if err != nil {
		hs.Error = err.Error()
		return hs
	}
	hs.Reachable = true
	hs.Version = st.Version
	hs.Bridge = st.Bridge
	return hs
}

// shutdownDaemon answers first and stops after: the server drains
// in-flight requests, this one included, before Serve returns.
func (d *Daemon) shutdownDaemon(ctx context.Context, _ rpc.NoParams) (api.ShutdownResult, error) {
	op := oplog.Begin(ctx, d.logger, "daemon.shutdown")
	d.shutdown()
	op.Done()
	return api.ShutdownResult{PID: os.Getpid()}, nil
}
