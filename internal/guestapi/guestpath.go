package guestapi

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// GuestHome is root's home in the guest, where a guest path's "~"
// points: the work disk's mount point, and so the only place file sync
// and the daemon's work disk files (AuthorizedKeysPath, ...) can go.
const GuestHome = WorkMountPoint

// guestPathUse is what every GuestPath error says is accepted.
const guestPathUse = "use ~/PATH or " + GuestHome + "/PATH"

// GuestPath checks a guest path as a [[file_sync]] entry or the daemon
// names it, and returns it as a clean absolute path strictly inside
// GuestHome ("/root/x"). The rules, in the order they are checked:
//
//   - It must not be empty, nor contain a NUL byte.
//   - "~/x" is x in GuestHome; so is "/root/x". A bare "~" is GuestHome
//     itself, like "~/" and "/root" (and is refused below). "~user/x"
//     is refused: there is no other user's home to expand to.
//   - Anything else that is not absolute ("x", "./x") is refused.
//   - The path is cleaned lexically (path.Clean): repeated slashes, "."
//     and ".." are resolved and a trailing slash is dropped, so "~/d/"
//     and "/root/a/../d" are both "/root/d". A "/" at the end does not
//     mean "directory": whether the guest gets a file or a directory is
//     up to what is copied there.
//   - The cleaned path must not be GuestHome itself ("~", "~/", "/root/",
//     "~/x/.."): writing over the whole home is refused.
//   - It must be inside GuestHome: "/etc/x", "~/../etc/x", "/root/../x"
//     and "/rootfs/x" are refused.
//
// Every error names the path as given, what is wrong with it and what
// is accepted.
func GuestPath(raw string) (clean string, err error) {
	var abs string
	switch {
	case raw == "":
		return "", errors.New("guest path is empty; " + guestPathUse)
	case strings.ContainsRune(raw, 0):
		return "", guestPathError(raw, "contains a NUL byte; "+guestPathUse)
	case raw == "~" || strings.HasPrefix(raw, "~/"):
		abs = GuestHome + "/" + strings.TrimPrefix(raw, "~")
	case strings.HasPrefix(raw, "~"):
		return "", guestPathError(raw, "names another user's home: only ~ ("+GuestHome+", root's home) is expanded, not ~user; "+guestPathUse)
	case path.IsAbs(raw):
		abs = raw
	default:
		return "", guestPathError(raw, "is relative; "+guestPathUse)
	}
	clean = path.Clean(abs)
	if clean == GuestHome {
		return "", guestPathError(raw, "is "+GuestHome+" itself (root's home); name a file or directory inside it; "+guestPathUse)
	}
	if !strings.HasPrefix(clean, GuestHome+"/") {
		return "", guestPathError(raw, "is outside "+GuestHome+", the only place file sync writes; "+guestPathUse)
	}
	return clean, nil
}

func guestPathError(raw, problem string) error {
	return fmt.Errorf("guest path %q %s", raw, problem)
}
