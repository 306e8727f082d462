package guest

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// consoleLog writes banger-guest's progress to the console, where the
// daemon reads it in the VM's console log. Each line carries the time
// since the kernel started, the clock the kernel's own messages use, so a
// slow step shows up against the rest of the boot.
type consoleLog struct {
	w     io.Writer
	clock func() time.Duration
}

func newConsoleLog(w io.Writer) *consoleLog {
	return &consoleLog{w: w, clock: sinceBoot}
}

// printf writes one line: "banger-guest: 2.417s <message>".
func (l *consoleLog) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(l.w, "banger-guest: %.3fs %s\n", l.clock().Seconds(), msg)
}

// sinceBoot is CLOCK_BOOTTIME, the time since the kernel started.
func sinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// ms formats how long a step took since start, in milliseconds.
func ms(start time.Time) string {
	return fmt.Sprintf("%.1fms", float64(time.Since(start).Microseconds())/1000)
}
