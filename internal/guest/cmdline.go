package guest

import (
	"fmt"
	"path"
	"strings"

	"banger/internal/guestapi"
)

// bootParams is what /init reads from the kernel command line: which
// disk to mount as the root filesystem, how, and what to run on it.
type bootParams struct {
	Root     string // block device path, e.g. /dev/vda
	FSType   string // rootfstype=, default ext4
	Options  string // rootflags=, passed to mount(2) as data
	ReadOnly bool   // ro / rw, default rw; the last one wins, as in the kernel
	Init     string // init=, default guestapi.RealInit
}

// kernelParams splits a kernel command line into its parameters the way
// the kernel does (kernel/params.c next_arg): whitespace separates them
// unless inside double quotes, and the quotes themselves are dropped.
// Parameters after a lone "--" belong to init, not the kernel, and are
// not returned.
func kernelParams(cmdline string) []string {
	var params []string
	var cur strings.Builder
	inQuote, inParam := false, false
	flush := func() {
		if inParam {
			params = append(params, cur.String())
		}
		cur.Reset()
		inParam = false
	}
	for _, r := range cmdline {
		switch {
		case r == '"':
			inQuote = !inQuote
			inParam = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			flush()
		default:
			cur.WriteRune(r)
			inParam = true
		}
	}
	flush()
	for i, p := range params {
		if p == "--" {
			return params[:i]
		}
	}
	return params
}

// parseBootParams reads root=, rootfstype=, rootflags=, ro, rw and
// init= from a kernel command line. Only /dev paths are accepted for
// root=: the initramfs has no udev to resolve UUID= or LABEL=, and banger
// always names the disk by its virtio position.
func parseBootParams(cmdline string) (bootParams, error) {
	p := bootParams{Root: guestapi.DefaultRootDevice, FSType: "ext4", Init: guestapi.RealInit}
	for _, param := range kernelParams(cmdline) {
		key, value, hasValue := strings.Cut(param, "=")
		switch {
		case key == "ro" && !hasValue:
			p.ReadOnly = true
		case key == "rw" && !hasValue:
			p.ReadOnly = false
		case key == "root":
			p.Root = value
		case key == "rootfstype":
			p.FSType = value
		case key == "rootflags":
			p.Options = value
		case key == "init":
			p.Init = value
		}
	}
	if !strings.HasPrefix(p.Root, "/dev/") || path.Clean(p.Root) != p.Root {
		return bootParams{}, fmt.Errorf("root=%s: only a /dev path such as %s is supported (no udev in the initramfs to resolve UUID=, LABEL= or PARTUUID=)", p.Root, guestapi.DefaultRootDevice)
	}
	if p.FSType == "" || strings.ContainsRune(p.FSType, ',') {
		return bootParams{}, fmt.Errorf("rootfstype=%s: name one filesystem type", p.FSType)
	}
	if !path.IsAbs(p.Init) {
		return bootParams{}, fmt.Errorf("init=%s: not an absolute path", p.Init)
	}
	if p.Options == "" && p.FSType == "ext4" {
		p.Options = ext4NoLazyInit
	}
	return p, nil
}

// ext4NoLazyInit is how banger-guest mounts its ext4 disks unless told
// otherwise. A file system made by mkfs.ext4 leaves its inode tables to
// be zeroed after mount by a kernel thread, which under software
// emulation takes seconds of the one CPU away from the boot. banger's
// disks are sparse image files, so those tables read as zeros anyway:
// noinit_itable skips the work, safely.
const ext4NoLazyInit = "noinit_itable"
