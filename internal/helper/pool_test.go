package helper

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/internal/helperapi"
	"banger/internal/helperclient"
	"banger/internal/tappool"
	"banger/internal/testutil/netns"
)

// bangerTaps lists the tap interfaces present in the namespace.
func bangerTaps(t *testing.T, ns *netns.NS) []string {
	var taps []string
	for _, line := range strings.Split(ns.Run(t, "ip", "-o", "link", "show"), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 {
			name := strings.TrimSuffix(strings.SplitN(fields[1], "@", 2)[0], ":")
			if tapIndex(name) >= 0 {
				taps = append(taps, name)
			}
		}
	}
	return taps
}

// TestTapPoolWithRealHelper: the daemon's pool, on the real helper, fills
// up, refills after use, never hands out a tap twice, and leaves nothing
// behind when closed.
func TestTapPoolWithRealHelper(t *testing.T) {
	ns := netns.New(t)
	h := newHelperDir(t, ns, 0)
	h.start()
	pool := tappool.New(helperclient.Client{Socket: h.socket}, 3, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pool.Start(ctx)

	waitReady := func(n int) {
		t.Helper()
		waitFor(t, "pool to fill", func() bool { return pool.Stats().Ready == n })
	}
	waitReady(3)
	if taps := bangerTaps(t, ns); len(taps) != 3 {
		t.Fatalf("taps in the namespace after filling: %v", taps)
	}

	// Five concurrent takes from a pool of three: three hits, two misses,
	// five distinct taps that all exist and are the caller's.
	var mu sync.Mutex
	taken := map[string]bool{}
	hits := 0
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, hit, err := pool.Take(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if taken[name] {
				t.Errorf("tap %s handed out twice", name)
			}
			taken[name] = true
			if hit {
				hits++
			}
		}()
	}
	wg.Wait()
	if len(taken) != 5 || hits < 3 {
		t.Fatalf("took %v with %d hits", taken, hits)
	}
	for name := range taken {
		if owner := strings.TrimSpace(ns.Run(t, "cat", "/sys/class/net/"+name+"/owner")); owner != "0" {
			t.Errorf("%s owner %s", name, owner)
		}
	}

	// The pool refills behind the takes, with taps none of which is out.
	waitReady(3)
	st := pool.Stats()
	if st.Hits+st.Misses != 5 {
		t.Errorf("stats %+v", st)
	}
	if taps := bangerTaps(t, ns); len(taps) != 8 {
		t.Errorf("want 5 out + 3 ready taps, have %v", taps)
	}

	// Returning five into a full pool of three deletes them.
	for name := range taken {
		if err := pool.Return(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if taps := bangerTaps(t, ns); len(taps) != 3 {
		t.Errorf("after returns: %v", taps)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelClose()
	if err := pool.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	if taps := bangerTaps(t, ns); len(taps) != 0 {
		t.Errorf("Close left taps behind: %v", taps)
	}
	var hs helperapi.StatusResult
	if err := h.call("op-0000000000a9", helperapi.MethodStatus, nil, &hs); err != nil || len(hs.Taps) != 0 {
		t.Errorf("helper still records %+v, %v", hs.Taps, err)
	}
}
