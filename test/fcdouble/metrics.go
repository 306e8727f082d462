package fcdouble

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"time"
)

// metricsWriter appends one JSON object per line to the metrics file,
// periodically and on FlushMetrics, as Firecracker does. Counters are
// what happened since the previous line, as Firecracker's are.
type metricsWriter struct {
	mu   sync.Mutex
	f    *os.File
	d    *Double
	last map[string]uint64 // cumulative values at the previous line
	stop chan struct{}
}

func newMetricsWriter(f *os.File, d *Double) *metricsWriter {
	return &metricsWriter{f: f, d: d, last: map[string]uint64{}, stop: make(chan struct{})}
}

func (m *metricsWriter) tick(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.d.mu.Lock()
			m.write()
			m.d.mu.Unlock()
		case <-m.d.Exited:
			return
		}
	}
}

// write appends a line; the caller holds the double's lock.
func (m *metricsWriter) write() {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.d
	line := map[string]any{
		"utc_timestamp_ms": time.Now().UnixMilli(),
		"api_server": map[string]any{
			"process_startup_time_us":     uint64(time.Since(d.startedAt).Microseconds()),
			"process_startup_time_cpu_us": 0,
		},
	}
	// API requests by kind, as Firecracker groups them.
	get, put, patch := map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	for key, n := range d.counts {
		method, rest, _ := strings.Cut(key, " ")
		name := requestMetricName(rest)
		switch method {
		case "get":
			get[name] += n
		case "put":
			put[name] += n
		case "patch":
			patch[name] += n
		}
	}
	line["get_api_requests"] = m.delta("get.", get)
	line["put_api_requests"] = m.delta("put.", put)
	line["patch_api_requests"] = m.delta("patch.", patch)

	blockAll := map[string]uint64{}
	if d.machine != nil {
		stats := d.machine.blockStats()
		for id, s := range stats {
			dm := m.delta("block_"+id+".", s)
			line["block_"+id] = dm
			for k, v := range dm {
				blockAll[k] += v
			}
		}
	}
	line["block"] = blockAll
	netAll := map[string]uint64{}
	for _, iface := range d.vm.Ifaces {
		dm := m.delta("net_"+iface.IfaceID+".", tapStats(iface.HostDevName))
		line["net_"+iface.IfaceID] = dm
		for k, v := range dm {
			netAll[k] += v
		}
	}
	line["net"] = netAll
	line["vmm"] = map[string]uint64{"panic_count": 0}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	m.f.Write(append(b, '\n'))
}

// delta turns cumulative values into increments since the last line.
func (m *metricsWriter) delta(prefix string, cur map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range cur {
		prev := m.last[prefix+k]
		if v >= prev {
			out[k] = v - prev
		} else {
			out[k] = v
		}
		m.last[prefix+k] = v
	}
	return out
}

// requestMetricName is Firecracker's counter for a request kind:
// "/drives/{drive_id}" → "drive_count", "/actions InstanceStart" →
// "actions_count".
func requestMetricName(rest string) string {
	path, _, _ := strings.Cut(rest, " ")
	switch path {
	case "/":
		return "instance_info_count"
	case "/actions":
		return "actions_count"
	case "/boot-source":
		return "boot_source_count"
	case "/drives/{drive_id}":
		return "drive_count"
	case "/logger":
		return "logger_count"
	case "/machine-config":
		return "machine_cfg_count"
	case "/metrics":
		return "metrics_count"
	case "/network-interfaces/{iface_id}":
		return "network_count"
	case "/vsock":
		return "vsock_count"
	case "/vm":
		return "vm_count"
	case "/version":
		return "vmm_version_count"
	case "/vm/config":
		return "vm_config_count"
	}
	return strings.ReplaceAll(strings.Trim(path, "/"), "/", "_") + "_count"
}
