package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/paths"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// holds the invariants the daemon relies on.
func FuzzParse(f *testing.F) {
	full, err := os.ReadFile(filepath.Join("testdata", "full.toml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte(""))
	f.Add([]byte("cidr = \"/24\"\nbridge_ip = \"10.0.0.1\"\n"))
	f.Add([]byte("file_sync = [{ host = \"~/a\", guest = \"~/../b\" }]\n"))
	f.Add([]byte("host_home_dir = \"/srv/me\"\nfile_sync = [{ host = \"/srv/me/../x\", guest = \"~/x\" }]\n"))
	f.Add([]byte("[vm_defaults]\nwork_disk_size = 1\nsystem_overlay_size = \"1K\"\n"))

	layout := paths.Layout{StateDir: "/state/banger"}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "/x/config.toml", layout, "/home/alice")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config /x/config.toml: ") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		switch cfg.LogLevel {
		case "debug", "info", "warn", "error":
		default:
			t.Errorf("LogLevel = %q", cfg.LogLevel)
		}
		switch cfg.VMM {
		case "auto", "firecracker", "qemu":
		default:
			t.Errorf("VMM = %q", cfg.VMM)
		}
		if cfg.StatsPollInterval <= 0 || cfg.AutoStopStaleAfter < 0 {
			t.Errorf("durations %v, %v", cfg.StatsPollInterval, cfg.AutoStopStaleAfter)
		}
		if cfg.TapPoolSize < 0 || cfg.TapPoolSize > 64 {
			t.Errorf("TapPoolSize = %d", cfg.TapPoolSize)
		}
		if err := checkBridgeHost(cfg.BridgeIP, cfg.CIDR); err != nil {
			t.Errorf("accepted bridge %s/%s: %v", cfg.BridgeIP, cfg.CIDR, err)
		}
		for _, p := range []string{cfg.SSHKeyPath, cfg.HostHomeDir, cfg.HelperSocket} {
			if !filepath.IsAbs(p) {
				t.Errorf("path %q is not absolute", p)
			}
		}
		if len(cfg.HelperSocket) > maxSocketPath {
			t.Errorf("helper socket %q is longer than a unix socket path can be", cfg.HelperSocket)
		}
		for _, e := range cfg.FileSync {
			if !strings.HasPrefix(e.Guest, "/root/") || strings.Contains(e.Guest, "/../") || strings.HasSuffix(e.Guest, "/..") {
				t.Errorf("guest %q escapes /root", e.Guest)
			}
			if !strings.HasPrefix(e.Host, "~/") && !strings.HasPrefix(e.Host, "/") {
				t.Errorf("host %q is neither ~/ nor absolute", e.Host)
			}
			// Written either way, the host stays strictly inside the home.
			if rel, err := filepath.Rel(cfg.HostHomeDir, ExpandHome(e.Host, cfg.HostHomeDir)); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Errorf("host %q leaves home %s (%q)", e.Host, cfg.HostHomeDir, rel)
			}
		}
	})
}
