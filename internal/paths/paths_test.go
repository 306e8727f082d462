package paths

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"banger/internal/errdefs"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolveXDG(t *testing.T) {
	l, err := Resolve(envOf(map[string]string{
		"HOME":            "/home/u",
		"XDG_CONFIG_HOME": "/cfg",
		"XDG_RUNTIME_DIR": "/run/user/1000",
		"XDG_STATE_HOME":  "/state",
		"XDG_DATA_HOME":   "/data",
		"XDG_CACHE_HOME":  "/cache",
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	want := Layout{
		ConfigFile: "/cfg/banger/config.toml",
		RuntimeDir: "/run/user/1000/banger",
		SocketPath: "/run/user/1000/banger/bangerd.sock",
		LockPath:   "/run/user/1000/banger/bangerd.lock",
		StateDir:   "/state/banger",
		DBPath:     "/state/banger/banger.db",
		LogPath:    "/state/banger/bangerd.log",
		DataDir:    "/data/banger",
		ImagesDir:  "/data/banger/images",
		VMsDir:     "/data/banger/vms",
		CacheDir:   "/cache/banger",
	}
	if l != want {
		t.Errorf("Resolve =\n%+v\nwant\n%+v", l, want)
	}
}

func TestResolveFallbacks(t *testing.T) {
	l, err := Resolve(envOf(map[string]string{"HOME": "/home/u"}), "")
	if err != nil {
		t.Fatal(err)
	}
	if l.ConfigFile != "/home/u/.config/banger/config.toml" || l.StateDir != "/home/u/.local/state/banger" || l.DataDir != "/home/u/.local/share/banger" {
		t.Errorf("home fallbacks: %+v", l)
	}
	uid := strconv.Itoa(os.Getuid())
	if l.RuntimeDir != filepath.Join("/run/user", uid, "banger") && l.RuntimeDir != filepath.Join(os.TempDir(), "banger-"+uid, "banger") {
		t.Errorf("runtime fallback = %s", l.RuntimeDir)
	}
}

func TestResolveConfigOverrides(t *testing.T) {
	l, _ := Resolve(envOf(map[string]string{"HOME": "/h"}), "")
	if l.ConfigNamed {
		t.Errorf("the default config path counts as named: %+v", l)
	}
	env := map[string]string{"HOME": "/h", "BANGER_CONFIG": "/etc/b.toml"}
	l, _ = Resolve(envOf(env), "")
	if l.ConfigFile != "/etc/b.toml" || !l.ConfigNamed {
		t.Errorf("BANGER_CONFIG ignored: %s (named %v)", l.ConfigFile, l.ConfigNamed)
	}
	l, _ = Resolve(envOf(env), "/flag.toml")
	if l.ConfigFile != "/flag.toml" || !l.ConfigNamed {
		t.Errorf("flag does not win over BANGER_CONFIG: %s (named %v)", l.ConfigFile, l.ConfigNamed)
	}
	wd, _ := os.Getwd()
	l, _ = Resolve(envOf(env), "rel.toml")
	if l.ConfigFile != filepath.Join(wd, "rel.toml") {
		t.Errorf("relative config not made absolute: %s", l.ConfigFile)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	there := filepath.Join(dir, "there.toml")
	if err := os.WriteFile(there, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.toml")
	for _, tc := range []struct {
		l       Layout
		missing bool
	}{
		{Layout{ConfigFile: missing}, false}, // the default path may be absent
		{Layout{ConfigFile: there, ConfigNamed: true}, false},
		{Layout{ConfigFile: missing, ConfigNamed: true}, true},
	} {
		err := tc.l.CheckConfig()
		if got := err != nil; got != tc.missing {
			t.Errorf("CheckConfig(%+v) = %v", tc.l, err)
		}
		if err != nil && (!errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), missing+": no such file")) {
			t.Errorf("CheckConfig error %v: want not found, naming the file", err)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h", "XDG_RUNTIME_DIR": "run"}, "XDG_RUNTIME_DIR must be an absolute path"},
		{map[string]string{"HOME": "/h", "XDG_STATE_HOME": "state"}, "XDG_STATE_HOME must be an absolute path"},
		{map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": "c"}, "XDG_CONFIG_HOME must be an absolute path"},
		{map[string]string{"HOME": "/h", "XDG_RUNTIME_DIR": "/" + strings.Repeat("x", 100)}, "over the 107 a unix socket allows"},
	}
	for _, tt := range tests {
		if _, err := Resolve(envOf(tt.env), ""); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Resolve(%v) error = %v, want %q", tt.env, err, tt.want)
		}
	}
}

func TestEnsureRuntimeDir(t *testing.T) {
	base := t.TempDir()
	l, err := Resolve(envOf(map[string]string{"HOME": base, "XDG_RUNTIME_DIR": base}), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureRuntimeDir(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(l.RuntimeDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("runtime dir %v mode %v", err, fi.Mode())
	}
	// A loosened mode is tightened again.
	os.Chmod(l.RuntimeDir, 0o755)
	if err := l.EnsureRuntimeDir(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(l.RuntimeDir); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode not tightened: %v", fi.Mode())
	}
	// A symlink in its place is refused, not followed.
	os.Remove(l.RuntimeDir)
	os.Symlink(t.TempDir(), l.RuntimeDir)
	if err := l.EnsureRuntimeDir(); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("symlinked runtime dir: %v", err)
	}
}

func TestEnsureRuntimeDirRefusesOtherOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create a directory owned by another uid")
	}
	base := t.TempDir()
	l, _ := Resolve(envOf(map[string]string{"HOME": base, "XDG_RUNTIME_DIR": base}), "")
	os.Mkdir(l.RuntimeDir, 0o700)
	os.Chown(l.RuntimeDir, 65534, 65534)
	if err := l.EnsureRuntimeDir(); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("foreign runtime dir: %v", err)
	}
}

func TestEnsureStateDirs(t *testing.T) {
	base := t.TempDir()
	l, _ := Resolve(envOf(map[string]string{"HOME": base}), "")
	if err := l.EnsureStateDirs(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{l.StateDir, l.ImagesDir, l.VMsDir} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v", d, err)
		}
	}
}
