package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sweep removes what benchmarks killed mid-run leave behind: processes in
// their network namespaces and the namespaces, loop-mounted XFS file
// systems, and temporary directories made since start (unmounting
// anything still mounted under them first).
func sweep(start time.Time) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line) // "bgt-1a2b3c4d (id: 3)"
		if len(f) == 0 || !strings.HasPrefix(f[0], "bgt-") {
			continue
		}
		name := f[0]
		pids, _ := exec.Command("ip", "netns", "pids", name).Output()
		for _, p := range strings.Fields(string(pids)) {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(200 * time.Millisecond)
		exec.Command("ip", "netns", "delete", name).Run()
		fmt.Fprintln(os.Stderr, "bench: removed network namespace", name)
	}
	var dirs []string
	for _, pattern := range []string{"Benchmark*", "banger-bench-xfs*", "bgu*", "bgh*", "bcp*", "bcq*", "bge*", "banger-bin*", "banger-fcdouble*"} {
		matches, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() && !fi.ModTime().Before(start) {
				dirs = append(dirs, m)
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	var points []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			for _, d := range dirs {
				if strings.HasPrefix(f[1], d+"/") {
					points = append(points, f[1])
				}
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points))) // deepest first
	for _, p := range points {
		exec.Command("umount", "-l", p).Run()
		fmt.Fprintln(os.Stderr, "bench: unmounted", p)
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	if len(dirs) > 0 {
		fmt.Fprintf(os.Stderr, "bench: removed %d temporary directories\n", len(dirs))
	}
}
