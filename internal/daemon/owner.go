package daemon

import (
	"os"
	"syscall"
)

// ownerOf is the uid owning a file, -1 when unknown.
func ownerOf(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
