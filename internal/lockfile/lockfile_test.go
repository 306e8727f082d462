package lockfile

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestTryLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrHeld) {
		t.Fatalf("second TryLock = %v, want ErrHeld", err)
	}
	if err := l.WritePID(1234); err != nil {
		t.Fatal(err)
	}
	if got := ReadPID(path); got != 1234 {
		t.Errorf("ReadPID = %d", got)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if got := ReadPID(path); got != 0 {
		t.Errorf("ReadPID after Release = %d, want 0", got)
	}
	l2, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after Release: %v", err)
	}
	l2.Release()
}

// A lock held by a process that dies is free again: this is what makes a
// crashed daemon's lock harmless.
func TestLockFreedWhenHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	// -o: only flock itself holds the lock, not the sleep it runs.
	cmd := exec.Command("flock", "-o", "-n", path, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := TryLock(path)
		if errors.Is(err, ErrHeld) {
			break
		}
		if err == nil {
			l.Release()
		}
		if time.Now().After(deadline) {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	l, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock of a killed holder: %v", err)
	}
	l.Release()
}

func TestAcquireWaitsAndTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	held, _ := TryLock(path)
	go func() {
		time.Sleep(50 * time.Millisecond)
		held.Release()
	}()
	l, err := Acquire(context.Background(), path)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire on a held lock = %v, want deadline exceeded", err)
	}
	l.Release()
}

func TestReadPIDGarbage(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "", "text": "abc", "negative": "-5"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if got := ReadPID(p); got != 0 {
			t.Errorf("ReadPID(%s) = %d", name, got)
		}
	}
	if ReadPID(filepath.Join(dir, "missing")) != 0 {
		t.Error("ReadPID of a missing file")
	}
}
