package cli

import (
	"testing"

	"banger/internal/api"
	"banger/internal/helperapi"
)

func TestDescribeHelper(t *testing.T) {
	bridge := helperapi.BridgeInfo{Name: "br-fc", Address: "172.16.0.1/24", Exists: true, Up: true}
	for _, tc := range []struct {
		name string
		in   api.HelperStatus
		want string
	}{
		{"up", api.HelperStatus{Reachable: true, Version: "v0.4.0", Bridge: bridge},
			"reachable (v0.4.0), bridge br-fc 172.16.0.1/24 up"},
		{"down", api.HelperStatus{Reachable: true, Version: "dev", Bridge: helperapi.BridgeInfo{Name: "br-fc", Address: "172.16.0.1/24", Exists: true}},
			"reachable (dev), bridge br-fc 172.16.0.1/24 down"},
		{"missing", api.HelperStatus{Reachable: true, Version: "dev", Bridge: helperapi.BridgeInfo{Name: "br-x"}},
			"reachable (dev), bridge br-x not created yet"},
		{"no bridge", api.HelperStatus{Reachable: true, Version: "dev"}, "reachable (dev)"},
		{"unreachable", api.HelperStatus{Error: "banger-helper is not running at /run/banger/helper.sock"},
			"not reachable: banger-helper is not running at /run/banger/helper.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeHelper(tc.in); got != tc.want {
				t.Errorf("describeHelper = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDescribeTapPool(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        api.TapPoolStatus
		reachable bool
		want      string
	}{
		{"full", api.TapPoolStatus{Size: 2, Ready: 2}, true, "2/2 ready"},
		{"used", api.TapPoolStatus{Size: 2, Ready: 1, Hits: 3, Misses: 1}, true, "1/2 ready (3 hits, 1 miss)"},
		{"one hit", api.TapPoolStatus{Size: 4, Ready: 4, Hits: 1, Misses: 2}, true, "4/4 ready (1 hit, 2 misses)"},
		{"refill failing", api.TapPoolStatus{Size: 2, LastError: "create tap: too many taps"}, true,
			"0/2 ready, last refill failed: create tap: too many taps"},
		{"helper down", api.TapPoolStatus{Size: 2, LastError: "create tap: banger-helper is not running"}, false,
			"0/2 ready, waiting for banger-helper"},
		{"off", api.TapPoolStatus{Misses: 5}, true, "off (tap_pool_size = 0): each VM start creates its tap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeTapPool(tc.in, tc.reachable); got != tc.want {
				t.Errorf("describeTapPool = %q, want %q", got, tc.want)
			}
		})
	}
}
