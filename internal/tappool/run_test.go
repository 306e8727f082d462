package tappool

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"banger/internal/opid"
	"banger/internal/oplog"
)

// records decodes the JSON log lines written to logs.
func records(t *testing.T, logs *syncBuffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// opRecord is the op id of the log's first record of operation with
// this message, "" when there is none.
func opRecord(t *testing.T, logs *syncBuffer, operation, msg string) string {
	t.Helper()
	for _, rec := range records(t, logs) {
		if rec["operation"] == operation && rec["msg"] == msg {
			id, _ := rec["op_id"].(string)
			return id
		}
	}
	return ""
}

// TestRunAdoptsFreeTaps: taps left by an earlier daemon are adopted up
// to the pool's size and the rest deleted; a VM's tap (not listed) is
// left alone; the lister runs under the adoption's op id; at stop the
// pool releases its ready taps but not the one handed out.
func TestRunAdoptsFreeTaps(t *testing.T) {
	f := newFakeAllocator(t, "bgtap90", "bgtap91", "bgtap92", "bgtap93")
	var logs syncBuffer
	logger, _, _ := oplog.NewLogger(&logs, "debug")
	p := New(f, 2, logger)
	var listedUnder atomic.Value
	free := func(ctx context.Context) ([]string, error) {
		listedUnder.Store(opid.From(ctx))
		return f.list("bgtap91")(ctx)
	}
	stop := p.Run(context.Background(), free)
	waitFor(t, "adoption", func() bool { return opRecord(t, &logs, "tap_pool.adopt", "operation completed") != "" })
	if live := f.liveTaps(); !slices.Equal(live, []string{"bgtap90", "bgtap91", "bgtap92"}) {
		t.Errorf("taps after adoption = %v, want bgtap90 and bgtap92 adopted, bgtap93 deleted, the VM's bgtap91 kept", live)
	}
	if creates, _ := f.counts(); creates != 0 || p.Stats().Ready != 2 {
		t.Errorf("%d creates, pool %+v: adoption should have filled it", creates, p.Stats())
	}
	adoptID := opRecord(t, &logs, "tap_pool.adopt", "operation completed")
	if !opid.Valid(adoptID) || listedUnder.Load() != adoptID {
		t.Errorf("adoption logged under %q, listed under %v", adoptID, listedUnder.Load())
	}

	name, hit, err := p.Take(context.Background())
	if err != nil || !hit || name != "bgtap90" {
		t.Fatalf("Take = %s, %v, %v", name, hit, err)
	}
	waitFor(t, "a refill", func() bool { c, _ := f.counts(); return c == 1 })
	stop()
	if live := f.liveTaps(); len(live) != 2 || !slices.Contains(live, "bgtap90") || !slices.Contains(live, "bgtap91") {
		t.Errorf("taps after stop = %v, want only the VM's and the one handed out", live)
	}
	if opRecord(t, &logs, "tap_pool.close", "operation completed") == "" {
		t.Errorf("no completed tap_pool.close in the log:\n%s", logs.String())
	}
}

// TestRunWaitsForLister: while the lister fails (no helper), the log
// says adoption waits, once at info level; when it works, leftovers are
// dealt with and the pool fills.
func TestRunWaitsForLister(t *testing.T) {
	f := newFakeAllocator(t, "bgtap95", "bgtap96", "bgtap97")
	var logs syncBuffer
	logger, _, _ := oplog.NewLogger(&logs, "info")
	p := New(f, 2, logger)
	p.minBackoff, p.maxBackoff = 5*time.Millisecond, 20*time.Millisecond
	var up atomic.Bool
	free := func(ctx context.Context) ([]string, error) {
		if !up.Load() {
			return nil, errHelperDown
		}
		return f.list("bgtap96")(ctx)
	}
	f.setFail(errHelperDown)
	stop := p.Run(context.Background(), free)
	defer stop()
	waitFor(t, "a refill failure", func() bool { return p.Stats().LastError != "" })
	time.Sleep(50 * time.Millisecond)
	if n := strings.Count(logs.String(), `"stage":"waiting for banger-helper"`); n != 1 {
		t.Errorf("%d info records of waiting for the helper, want 1:\n%s", n, logs.String())
	}

	f.setFail(nil)
	up.Store(true)
	waitFor(t, "adoption", func() bool { return opRecord(t, &logs, "tap_pool.adopt", "operation completed") != "" })
	waitReady(t, p, 2)
	waitFor(t, "leftovers deleted", func() bool { return len(f.liveTaps()) == 3 })
	if live := f.liveTaps(); !slices.Contains(live, "bgtap96") {
		t.Errorf("the VM's tap is gone: %v", live)
	}
}
