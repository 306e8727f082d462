package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuTicks is the machine's CPU time from /proc/stat: busy (all but
// idle and iowait) and in all, summed over every CPU.
type cpuTicks struct{ busy, all uint64 }

// readCPUTicks reads /proc/stat's first line.
func readCPUTicks(tb testing.TB) cpuTicks {
	tb.Helper()
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		tb.Fatalf("/proc/stat starts %q, want the cpu line", line)
	}
	var t cpuTicks
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			tb.Fatalf("/proc/stat field %q: %v", f, err)
		}
		if i >= 7 { // steal is not ours; guest and guest_nice are already in user and nice
			break
		}
		t.all += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

// since is the CPU time used and available between then and t. The
// kernel counts in ticks, so this is only good over windows of a second
// or more in all.
func (t cpuTicks) since(then cpuTicks) (used, available time.Duration) {
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(t.busy-then.busy) * tick, time.Duration(t.all-then.all) * tick
}
