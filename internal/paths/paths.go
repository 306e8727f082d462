// Package paths resolves where banger keeps things for one user: the
// config file, the daemon's socket and lock (runtime dir), its database
// and log (state dir), and images and VM directories (data dir). It
// follows the XDG base directory spec, so tests and users can move every
// path with environment variables.
package paths

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"banger/internal/errdefs"
)

// Layout is every per-user path banger uses.
type Layout struct {
	ConfigFile string // config.toml, which need not exist unless ConfigNamed
	// ConfigNamed: ConfigFile is what --config or $BANGER_CONFIG named,
	// not the default path, so it must exist.
	ConfigNamed bool
	RuntimeDir  string // 0700: socket, lock, pid
	SocketPath  string
	LockPath    string
	StateDir    string // database, daemon log, ssh key, known_hosts
	DBPath      string
	LogPath     string
	DataDir     string // images and VM directories
	ImagesDir   string
	VMsDir      string
	CacheDir    string // what can be downloaded again: Debian packages for image builds
}

// MissingConfig is the error for a config file the user named
// (ConfigNamed) that does not exist; it is errdefs.ErrNotFound. bangerd
// refuses to start on it, and the CLI says it before starting one.
func (l Layout) MissingConfig() error {
	return errdefs.Mark(errdefs.ErrNotFound, fmt.Errorf("config %s: no such file; a config that --config or $BANGER_CONFIG names must exist (only the default path may be absent)", l.ConfigFile))
}

// CheckConfig is MissingConfig when the config file was named and does
// not exist, nil otherwise (a file that is there is the config's to
// read and judge).
func (l Layout) CheckConfig() error {
	if !l.ConfigNamed {
		return nil
	}
	if _, err := os.Stat(l.ConfigFile); errors.Is(err, fs.ErrNotExist) {
		return l.MissingConfig()
	}
	return nil
}

// maxSocketPath is the size of sun_path in struct sockaddr_un, less the
// terminating NUL.
const maxSocketPath = 107

// Resolve computes the layout from the environment read through getenv
// (os.Getenv in production). configFile, when not empty, overrides the
// config location; otherwise $BANGER_CONFIG, then
// $XDG_CONFIG_HOME/banger/config.toml. It creates nothing.
func Resolve(getenv func(string) string, configFile string) (Layout, error) {
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return Layout{}, fmt.Errorf("home directory: %w", err)
		}
		home = h
	}
	xdg := func(key, fallback string) (string, error) {
		v := getenv(key)
		if v == "" {
			return filepath.Join(home, fallback), nil
		}
		if !filepath.IsAbs(v) {
			return "", fmt.Errorf("%s must be an absolute path, got %q", key, v)
		}
		return v, nil
	}

	var l Layout
	var err error
	switch {
	case configFile != "":
		l.ConfigFile, l.ConfigNamed = configFile, true
	case getenv("BANGER_CONFIG") != "":
		l.ConfigFile, l.ConfigNamed = getenv("BANGER_CONFIG"), true
	default:
		dir, err := xdg("XDG_CONFIG_HOME", ".config")
		if err != nil {
			return Layout{}, err
		}
		l.ConfigFile = filepath.Join(dir, "banger", "config.toml")
	}
	if l.ConfigFile, err = filepath.Abs(l.ConfigFile); err != nil {
		return Layout{}, fmt.Errorf("config path: %w", err)
	}

	runtimeBase := getenv("XDG_RUNTIME_DIR")
	if runtimeBase == "" {
		runtimeBase = fallbackRuntimeBase()
	} else if !filepath.IsAbs(runtimeBase) {
		return Layout{}, fmt.Errorf("XDG_RUNTIME_DIR must be an absolute path, got %q", runtimeBase)
	}
	l.RuntimeDir = filepath.Join(runtimeBase, "banger")
	l.SocketPath = filepath.Join(l.RuntimeDir, "bangerd.sock")
	l.LockPath = filepath.Join(l.RuntimeDir, "bangerd.lock")
	if len(l.SocketPath) > maxSocketPath {
		return Layout{}, fmt.Errorf("socket path %s is %d bytes, over the %d a unix socket allows; set XDG_RUNTIME_DIR to a shorter directory",
			l.SocketPath, len(l.SocketPath), maxSocketPath)
	}

	stateBase, err := xdg("XDG_STATE_HOME", filepath.Join(".local", "state"))
	if err != nil {
		return Layout{}, err
	}
	l.StateDir = filepath.Join(stateBase, "banger")
	l.DBPath = filepath.Join(l.StateDir, "banger.db")
	l.LogPath = filepath.Join(l.StateDir, "bangerd.log")

	dataBase, err := xdg("XDG_DATA_HOME", filepath.Join(".local", "share"))
	if err != nil {
		return Layout{}, err
	}
	l.DataDir = filepath.Join(dataBase, "banger")
	l.ImagesDir = filepath.Join(l.DataDir, "images")
	l.VMsDir = filepath.Join(l.DataDir, "vms")

	cacheBase, err := xdg("XDG_CACHE_HOME", ".cache")
	if err != nil {
		return Layout{}, err
	}
	l.CacheDir = filepath.Join(cacheBase, "banger")
	return l, nil
}

// fallbackRuntimeBase is used when XDG_RUNTIME_DIR is unset (a root shell,
// cron, a container): /run/user/UID when it exists and is ours, else a
// per-uid directory in the temp dir that EnsureRuntimeDir guards.
func fallbackRuntimeBase() string {
	uid := os.Getuid()
	run := filepath.Join("/run/user", strconv.Itoa(uid))
	if fi, err := os.Lstat(run); err == nil && fi.IsDir() {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid {
			return run
		}
	}
	return filepath.Join(os.TempDir(), "banger-"+strconv.Itoa(uid))
}

// EnsureRuntimeDir creates the runtime directory (and a missing parent,
// which happens only for the temp-dir fallback) with mode 0700, and
// refuses to use one that is a symlink or belongs to another user: the
// socket inside is the daemon's front door.
func (l Layout) EnsureRuntimeDir() error {
	parent := filepath.Dir(l.RuntimeDir)
	if _, err := os.Lstat(parent); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(parent, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create runtime dir %s: %w", parent, err)
		}
		if err := checkPrivateDir(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(l.RuntimeDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create runtime dir %s: %w", l.RuntimeDir, err)
	}
	return checkPrivateDir(l.RuntimeDir)
}

// EnsureStateDirs creates the state and data directories (0700).
func (l Layout) EnsureStateDirs() error {
	for _, dir := range []string{l.StateDir, l.DataDir, l.ImagesDir, l.VMsDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	return nil
}

// checkPrivateDir verifies dir is a real directory owned by us, and
// tightens its mode to 0700 if it is looser.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("runtime dir %s is not a directory (symlink or file); remove it", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("runtime dir %s: cannot read owner", dir)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("runtime dir %s belongs to uid %d, not to you (uid %d); refusing to use it", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("runtime dir %s: set mode 0700: %w", dir, err)
		}
	}
	return nil
}
