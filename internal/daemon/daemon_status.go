package daemon

import (
	"context"
	"time"

	"banger/internal/api"
	"banger/internal/rpc"
)

// helperStatusTimeout bounds the helper call daemon.status makes: the
// status must come back quickly, and say why when the helper does not.
const helperStatusTimeout = 1500 * time.Millisecond

// status is daemon.ping plus the root helper, asked just now, and the tap
// pool.
func (d *Daemon) status(ctx context.Context, _ rpc.NoParams) (api.StatusResult, error) {
	ping, err := d.ping(ctx, rpc.NoParams{})
	if err != nil {
		return api.StatusResult{}, err
	}
	return api.StatusResult{
		PingResult: ping,
		Helper:     d.helperStatus(ctx),
		TapPool:    d.tapPoolStatus(),
		VMM:        d.vmmChoice(),
	}, nil
}

// helperStatus asks the helper who it is. The call carries the request's
// op id, so a failure can be found in the helper's log too.
func (d *Daemon) helperStatus(ctx context.Context) api.HelperStatus {
	hs := api.HelperStatus{Socket: d.helper.Socket}
	ctx, cancel := context.WithTimeout(ctx, helperStatusTimeout)
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

func (d *Daemon) tapPoolStatus() api.TapPoolStatus {
	if d.tapPool == nil {
		return api.TapPoolStatus{}
	}
	st := d.tapPool.Stats()
	return api.TapPoolStatus{
		Size:      st.Size,
		Ready:     st.Ready,
		Hits:      st.Hits,
		Misses:    st.Misses,
		LastError: st.LastError,
	}
}
