package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// RemoveStaleSocket removes path if it is a socket an earlier VMM left;
// anything else at path is an error, never removed.
func RemoveStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	return os.Remove(path)
}

// LogTail is the last lines (at most maxBytes) of path from offset on:
// what a VMM that failed to start wrote, for its error.
func LogTail(path string, offset int64, lines, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if start := fi.Size() - int64(maxBytes); start > offset {
		offset = start
	}
	if offset >= fi.Size() {
		return ""
	}
	data := make([]byte, fi.Size()-offset)
	n, _ := f.ReadAt(data, offset)
	data = bytes.TrimRight(data[:n], "\n")
	all := strings.Split(string(data), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.TrimSpace(strings.Join(all, "\n"))
}
