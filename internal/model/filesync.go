package model

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// SyncHostPath checks a file sync entry's host path against home, the
// owner's home directory (DaemonConfig.HostHomeDir), and returns it as
// a clean absolute path strictly inside home. It is the written half of
// FileSyncEntry's rule that the host side stays within the home: the
// config checks it at load, so a bad entry stops the daemon with its
// name; the work disk build checks it again, then resolves the path's
// symlinks and checks where they lead. The rules, in order:
//
//   - It must not be empty, nor contain a NUL byte, and home must be a
//     configured absolute path.
//   - "~/x" is x in home; an absolute path is taken as written. A bare
//     "~", "~user/x" and relative paths ("x", "../x") are refused:
//     nothing says what they are relative to.
//   - The path is cleaned lexically (filepath.Clean), so "~/a/../b" is
//     home/b and "/home/me/../bob" is /home/bob.
//   - The cleaned path must be inside home, and not home itself (which
//     would copy every secret in it into the VM).
//
// Every error names the path as given, what is wrong with it and what
// is accepted.
func SyncHostPath(raw, home string) (string, error) {
	if raw == "" {
		return "", errors.New("host path is empty; " + syncHostUse(home))
	}
	if strings.ContainsRune(raw, 0) {
		return "", syncHostError(raw, "contains a NUL byte", home)
	}
	if home == "" || !filepath.IsAbs(home) {
		return "", fmt.Errorf("host path %q needs the home directory, and none is configured (host_home_dir)", raw)
	}
	home = filepath.Clean(home)
	var abs string
	switch {
	case raw == "~" || strings.HasPrefix(raw, "~/"):
		abs = filepath.Join(home, strings.TrimPrefix(raw, "~"))
	case strings.HasPrefix(raw, "~"):
		return "", syncHostError(raw, "names another user's home: only ~/ (host_home_dir) is expanded, not ~user", home)
	case filepath.IsAbs(raw):
		abs = filepath.Clean(raw)
	default:
		return "", syncHostError(raw, "is relative", home)
	}
	switch {
	case abs == home:
		return "", syncHostError(raw, "is the whole home directory "+home+"; name a file or directory inside it", home)
	case !strings.HasPrefix(abs, strings.TrimSuffix(home, "/")+"/"):
		problem := "is outside the home directory " + home
		if abs != raw {
			problem = "means " + abs + ", outside the home directory " + home
		}
		return "", syncHostError(raw, problem, home)
	}
	return abs, nil
}

// syncHostUse is what every SyncHostPath error says is accepted.
func syncHostUse(home string) string {
	if home == "" {
		return "use ~/PATH or an absolute path inside the home directory"
	}
	return "use ~/PATH or an absolute path inside " + filepath.Clean(home)
}

func syncHostError(raw, problem, home string) error {
	return fmt.Errorf("host path %q %s; %s", raw, problem, syncHostUse(home))
}
