package vmm

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestParseStartTime(t *testing.T) {
	// A command name with spaces and parentheses must not shift fields.
	line := []byte("1234 (qemu (x) y) S 1 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 3 0 987654 1000 10")
	got, err := parseStartTime(line)
	if err != nil || got != 987654 {
		t.Fatalf("parseStartTime = %d, %v", got, err)
	}
	if _, err := parseStartTime([]byte("1 (x) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestAliveAndWait(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h, err := HandleFor("test", cmd.Process.Pid, "")
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(h) {
		t.Fatal("a running process is not alive")
	}
	wrong := h
	wrong.StartTime++
	if Alive(wrong) {
		t.Error("a handle with another start time (a reused pid) counts as alive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, h); err == nil {
		t.Error("Wait returned while the process runs")
	}
	go func() { time.Sleep(100 * time.Millisecond); KillProcess(h) }()
	// Reap it as its parent would, so it does not stay a zombie.
	go cmd.Wait()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := Wait(ctx2, h); err != nil {
		t.Fatalf("Wait after kill: %v", err)
	}
	if Alive(h) {
		t.Error("killed process still alive")
	}
	if err := KillProcess(h); err != nil {
		t.Errorf("killing a gone process: %v", err)
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{VMID: "v", Dir: "/d", KernelPath: "/k", RootDisk: "/r", VCPUs: 1, MemoryMiB: 128, ConsoleLog: "/c"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.VCPUs = 0
	if bad.Validate() == nil {
		t.Error("0 vCPUs accepted")
	}
}
