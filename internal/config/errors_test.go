package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"bad bridge_ip", `bridge_ip = "300.1.1.1"`,
			`config /x/config.toml: bridge_ip: "300.1.1.1" is not an IPv4 address`},
		{"bad log_level", `log_level = "x"`,
			`config /x/config.toml: log_level: unsupported log_level "x" (use debug, info, warn, or error)`},
		{"unknown key", `bridge = "br0"`,
			`config /x/config.toml: bridge: unknown key`},
		{"unknown key in wrong case", `LOG_LEVEL = "info"`,
			`config /x/config.toml: LOG_LEVEL: unknown key (did you mean log_level?)`},
		{"misspelt vm_defaults key", "[vm_defaults]\nmemory_mb = 512",
			`config /x/config.toml: vm_defaults.memory_mb: unknown key (did you mean memory_mib?)`},
		{"misspelt file_sync key", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmdoe = \"0600\"",
			`config /x/config.toml: file_sync[0].mdoe: unknown key (did you mean mode?)`},
		{"mode as integer", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = 644",
			`config /x/config.toml: file_sync[0].mode: expected an octal string such as "0644", got integer 644`},
		{"vm_defaults not a table", `vm_defaults = [1]`,
			`config /x/config.toml: vm_defaults: expected a table (a [vm_defaults] section), got an array`},
		{"type mismatch", `tap_pool_size = "4"`,
			`config /x/config.toml: tap_pool_size: expected an integer, got string "4"`},
		{"network address", `bridge_ip = "172.16.0.0"`,
			`config /x/config.toml: bridge_ip: "172.16.0.0" is the network address of 172.16.0.0/24; use a host address such as 172.16.0.1`},
		{"broadcast address", "bridge_ip = \"10.0.255.255\"\ncidr = \"/16\"",
			`config /x/config.toml: bridge_ip: "10.0.255.255" is the broadcast address of 10.0.0.0/16; use a host address such as 10.0.0.1`},
		{"size", "[vm_defaults]\nwork_disk_size = \"8T\"",
			`config /x/config.toml: vm_defaults.work_disk_size: "8T": unit "T" is not K, M or G; use a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)`},
		{"size not whole", "[vm_defaults]\nsystem_overlay_size = \"1.5G\"",
			`config /x/config.toml: vm_defaults.system_overlay_size: "1.5G": "1.5" is not a whole number; use a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)`},
		{"helper socket relative", `helper_socket = "helper.sock"`,
			`config /x/config.toml: helper_socket: "helper.sock" is not an absolute path (start it with / or ~/)`},
		{"guest", "[[file_sync]]\nhost = \"~/.bashrc\"\nguest = \"/etc/bash.bashrc\"",
			`config /x/config.toml: file_sync[0].guest: guest path "/etc/bash.bashrc" is outside /root, the only place file sync writes; use ~/PATH or /root/PATH`},
		{"host outside the home", "[[file_sync]]\nhost = \"~/.bashrc\"\nguest = \"~/.bashrc\"\n[[file_sync]]\nhost = \"/etc/passwd\"\nguest = \"~/passwd\"",
			`config /x/config.toml: file_sync[1].host: host path "/etc/passwd" is outside the home directory /home/alice; use ~/PATH or an absolute path inside /home/alice`},
		{"host leaving the home", "[[file_sync]]\nhost = \"~/../bob/.ssh\"\nguest = \"~/.ssh\"",
			`config /x/config.toml: file_sync[0].host: host path "~/../bob/.ssh" means /home/bob/.ssh, outside the home directory /home/alice; use ~/PATH or an absolute path inside /home/alice`},
		{"guest bare tilde", "[[file_sync]]\nhost = \"~/.bashrc\"\nguest = \"~\"",
			`config /x/config.toml: file_sync[0].guest: guest path "~" is /root itself (root's home); name a file or directory inside it; use ~/PATH or /root/PATH`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.src)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Parse(%q) error = %v\nwant %s", tc.src, err, tc.want)
			}
		})
	}
}

func TestParseReportsEveryBadValue(t *testing.T) {
	src := "log_level = \"loud\"\ntap_pool_size = 100\n[vm_defaults]\nvcpu_count = 0\n"
	_, err := parse(t, src)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	for _, key := range []string{"log_level", "tap_pool_size", "vm_defaults.vcpu_count"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

func TestUnknownKeysReportedBeforeValues(t *testing.T) {
	// A misspelt key usually explains the rest; report it alone.
	_, err := parse(t, "log_level = \"loud\"\nbrige_name = \"br0\"\n")
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if want := "config /x/config.toml: brige_name: unknown key (did you mean bridge_name?)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestSyntaxErrorKeepsLine(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"bare value", "log_level = \"info\"\nbridge_ip = 1.2.3.4\n", "config /x/config.toml: line 2: bridge_ip: "},
		{"space in key", "# c\n\nbridge ip = \"x\"\n", "config /x/config.toml: line 3: "},
		{"unclosed table", "log_level = \"info\"\n[vm_defaults\n", "config /x/config.toml: line 2: "},
		{"duplicate key", "vmm = \"auto\"\nvmm = \"qemu\"\n", "config /x/config.toml: line 2: vmm: "},
		{"int64 overflow", "tap_pool_size = 99999999999999999999\n", "config /x/config.toml: line 1: tap_pool_size: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.src)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error = %v, want prefix %q", err, tc.want)
			}
			var pe toml.ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %v does not wrap a toml.ParseError", err)
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	layout := testLayout(t)
	if err := os.MkdirAll(filepath.Dir(layout.ConfigFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.ConfigFile, []byte("vmm = \"xen\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(layout, testHome)
	if err == nil || !strings.HasPrefix(err.Error(), "config "+layout.ConfigFile+": vmm: ") {
		t.Errorf("Load error = %v, want it to name %s and vmm", err, layout.ConfigFile)
	}
}

func TestLoadUnreadable(t *testing.T) {
	layout := testLayout(t)
	// A directory where the file should be: present but unreadable as a
	// file, so not "missing".
	if err := os.MkdirAll(layout.ConfigFile, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(layout, testHome); err == nil {
		t.Error("Load of a directory succeeded")
	}
}
