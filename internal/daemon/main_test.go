package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/api"
)

// TestMainRefusesItsConfig: bangerd does not start on a config file
// that was named and is not there (by --config or $BANGER_CONFIG), nor
// on a bad one, and says so with the exit status the CLI reads as "the
// config is wrong"; only the default path may be absent.
func TestMainRefusesItsConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_RUNTIME_DIR", dir)
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[vm_defaults]\nwork_disk_size = \"1.5G\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nosuch.toml")
	for _, tc := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{"--config missing", "", []string{"--config", missing}, "config " + missing + ": no such file"},
		{"$BANGER_CONFIG missing", missing, nil, "config " + missing + ": no such file"},
		{"bad value", "", []string{"--config", bad}, `vm_defaults.work_disk_size: "1.5G": "1.5" is not a whole number; use a whole number with K, M or G`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("BANGER_CONFIG", tc.env)
			var stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stderr)
			if code != api.ExitConfig || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), api.ExitConfig, tc.want)
			}
		})
	}
}
