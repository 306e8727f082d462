package binaries

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary a child that makes a build directory,
// prints it, and ends the way the variable says.
const childEnv = "BANGER_BINARIES_TEST_CHILD"

// TestBuildDirRemovedAtExit: the directory builds go to is gone once the
// test binary that made it has exited, whether it exited, panicked or
// was killed.
func TestBuildDirRemovedAtExit(t *testing.T) {
	if how := os.Getenv(childEnv); how != "" {
		child(how)
		return
	}
	for _, how := range []string{"exit", "panic", "kill"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBuildDirRemovedAtExit$")
			cmd.Env = append(os.Environ(), childEnv+"="+how)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child: %v", err)
			}
			dir := strings.TrimSpace(line)
			if _, err := os.Stat(filepath.Join(dir, "banger")); err != nil {
				t.Fatalf("the child's build directory: %v", err)
			}
			if how == "kill" {
				cmd.Process.Signal(syscall.SIGKILL)
			}
			cmd.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := os.Stat(dir); os.IsNotExist(err) {
					return
				}
				if time.Now().After(deadline) {
					os.RemoveAll(dir)
					t.Fatalf("%s is still there 10 s after its test binary ended (%s)", dir, how)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func child(how string) {
	dir, err := buildDir("banger-bin-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.WriteFile(filepath.Join(dir, "banger"), []byte("a built program"), 0o755)
	fmt.Println(dir)
	switch how {
	case "exit":
		os.Exit(0)
	case "panic":
		panic("a test panicked")
	}
	time.Sleep(time.Minute) // until killed
	os.Exit(4)
}
