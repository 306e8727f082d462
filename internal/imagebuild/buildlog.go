package imagebuild

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cancelGrace is how long a cancelled mmdebstrap gets to clean up after
// itself before it and everything it started are killed.
const cancelGrace = 10 * time.Second

// isProgressLine picks the mmdebstrap lines worth showing a user: its
// phases, not the echo of banger's own hooks or its internal checks.
func isProgressLine(line string) bool {
	msg, ok := strings.CutPrefix(line, "I: ")
	if !ok {
		return false
	}
	for _, noise := range []string{"running ", "chroot architecture", "finding correct signed-by", "skipping "} {
		if strings.HasPrefix(msg, noise) {
			return false
		}
	}
	return true
}

// buildLog writes a build's commands and their output to its log, and
// passes progress lines on to the reporter.
type buildLog struct {
	mu  sync.Mutex
	w   io.Writer
	rep Reporter
}

func (l *buildLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// run runs argv with its output in the log. Lines starting with "I: "
// (mmdebstrap's progress) become details of the current stage, prefixed
// with detailPrefix.
func (l *buildLog) run(ctx context.Context, detailPrefix string, argv ...string) error {
	l.printf("$ %s", strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On cancel, ask first: mmdebstrap traps SIGTERM, ends its phase and
	// unmounts what it mounted in the tree. If it has not exited after
	// cancelGrace, Wait kills it, and the whole group (apt, dpkg and
	// maintainer scripts) goes below; removeAll then deals with mounts
	// it left.
	cmd.Cancel = func() error { return syscall.Kill(cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = cancelGrace
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	var tail []string
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			l.printf("  %s", line)
			if detailPrefix != "" && isProgressLine(line) {
				l.rep.Detail(detailPrefix+strings.TrimPrefix(line, "I: "), -1)
			}
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	pw.Close()
	<-done
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w: %s", argv[0], err, strings.Join(tail, " | "))
	}
	return nil
}
