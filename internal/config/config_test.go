package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"banger/internal/errdefs"
	"banger/internal/model"
	"banger/internal/paths"
)

const testHome = "/home/alice"

func testLayout(t *testing.T) paths.Layout {
	t.Helper()
	dir := t.TempDir()
	return paths.Layout{
		ConfigFile: filepath.Join(dir, "config", "config.toml"),
		StateDir:   filepath.Join(dir, "state"),
	}
}

func parse(t *testing.T, src string) (model.DaemonConfig, error) {
	t.Helper()
	return Parse([]byte(src), "/x/config.toml", testLayout(t), testHome)
}

func TestDefaults(t *testing.T) {
	layout := paths.Layout{StateDir: "/state/banger"}
	got := Defaults(layout, testHome)
	want := model.DaemonConfig{
		LogLevel:           "info",
		FirecrackerBin:     "firecracker",
		SSHKeyPath:         "/state/banger/ssh/id_ed25519",
		HostHomeDir:        testHome,
		AutoStopStaleAfter: 0,
		StatsPollInterval:  10 * time.Second,
		BridgeName:         "br-fc",
		BridgeIP:           "172.16.0.1",
		CIDR:               "24",
		TapPoolSize:        2,
		DefaultDNS:         "1.1.1.1",
		DefaultImageName:   "default",
		VMM:                "auto",
		HelperSocket:       "/run/banger/helper.sock",

		HarvestMaxBundleBytes: 1 << 30,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadMissingFileGivesDefaults(t *testing.T) {
	layout := testLayout(t)
	got, err := Load(layout, testHome)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := Defaults(layout, testHome); !reflect.DeepEqual(got, want) {
		t.Errorf("Load() =\n%+v\nwant defaults\n%+v", got, want)
	}
}

// TestLoadNamedMissingFile: a file --config or $BANGER_CONFIG names must
// exist; only the default path may be absent.
func TestLoadNamedMissingFile(t *testing.T) {
	layout := testLayout(t)
	layout.ConfigNamed = true
	_, err := Load(layout, testHome)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) || !strings.HasPrefix(err.Error(), "config "+layout.ConfigFile+": no such file") {
		t.Errorf("Load of a named file that is not there = %v; want a not-found error naming it", err)
	}
}

func TestParseEmptyGivesDefaults(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"empty", ""},
		{"blank lines", "\n\n  \n"},
		{"comments only", "# nothing to see\n# log_level = \"debug\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layout := testLayout(t)
			got, err := Parse([]byte(tc.src), "/x/config.toml", layout, testHome)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := Defaults(layout, testHome); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse() =\n%+v\nwant defaults\n%+v", got, want)
			}
		})
	}
}

// fullWant is what testdata/full.toml must decode to.
func fullWant() model.DaemonConfig {
	return model.DaemonConfig{
		LogLevel:           "debug",
		FirecrackerBin:     "/usr/local/bin/firecracker",
		SSHKeyPath:         testHome + "/.ssh/banger_ed25519",
		HostHomeDir:        "/home/dev",
		AutoStopStaleAfter: 2 * time.Hour,
		StatsPollInterval:  30 * time.Second,
		BridgeName:         "br-banger",
		BridgeIP:           "10.77.0.1",
		CIDR:               "16",
		TapPoolSize:        4,
		DefaultDNS:         "9.9.9.9",
		DefaultImageName:   "debian-12",
		FileSync: []model.FileSyncEntry{
			{Host: "~/.gitconfig", Guest: "/root/.gitconfig"},
			{Host: "~/.config/nvim", Guest: "/root/.config/nvim", Mode: "0755"},
			{Host: "/home/dev/certs/corp-ca.pem", Guest: "/root/certs/corp-ca.pem", Mode: "644"},
		},
		VMDefaults: model.VMDefaultsOverride{
			VCPUCount:             4,
			MemoryMiB:             4096,
			SystemOverlaySizeByte: 16 << 30,
			WorkDiskSizeBytes:     20 << 30,
			NATEnabled:            true,
		},
		VMM:          "firecracker",
		HelperSocket: "/run/banger-test/helper.sock",

		HarvestMaxBundleBytes: 256 << 20,
	}
}

func TestFullExample(t *testing.T) {
	layout := testLayout(t)
	layout.ConfigFile = filepath.Join("testdata", "full.toml")
	got, err := Load(layout, testHome)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := fullWant(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(full.toml) =\n%+v\nwant\n%+v", got, want)
	}

	// The example documents every key, so every field must differ from
	// its default there; a new DaemonConfig field without a key (or
	// without an example) fails here.
	def := Defaults(layout, testHome)
	gv, dv := reflect.ValueOf(got), reflect.ValueOf(def)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if reflect.DeepEqual(gv.Field(i).Interface(), dv.Field(i).Interface()) {
			t.Errorf("full.toml leaves DaemonConfig.%s at its default", name)
		}
	}
	vd := reflect.ValueOf(got.VMDefaults)
	for i := range vd.NumField() {
		if vd.Field(i).IsZero() {
			t.Errorf("full.toml leaves VMDefaults.%s unset", vd.Type().Field(i).Name)
		}
	}
}

func TestFullExampleNamesEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "full.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range topLevelKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("full.toml does not set %s", k)
		}
	}
	vd, _ := m["vm_defaults"].(map[string]any)
	for _, k := range vmDefaultsKeys {
		if _, ok := vd[k]; !ok {
			t.Errorf("full.toml does not set vm_defaults.%s", k)
		}
	}
	seen := map[string]bool{}
	fs, _ := m["file_sync"].([]map[string]any)
	for _, e := range fs {
		for k := range e {
			seen[k] = true
		}
	}
	for _, k := range fileSyncKeys {
		if !seen[k] {
			t.Errorf("full.toml has no file_sync entry with %s", k)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		check func(model.DaemonConfig) bool
	}{
		{"log_level upper case", `log_level = "ERROR"`, func(c model.DaemonConfig) bool { return c.LogLevel == "error" }},
		{"log_level warning normalized", `log_level = "Warning"`, func(c model.DaemonConfig) bool { return c.LogLevel == "warn" }},
		{"log_level warn", `log_level = "warn"`, func(c model.DaemonConfig) bool { return c.LogLevel == "warn" }},
		{"cidr with slash", `cidr = "/20"`, func(c model.DaemonConfig) bool { return c.CIDR == "20" }},
		{"cidr integer", `cidr = 8`, func(c model.DaemonConfig) bool { return c.CIDR == "8" }},
		{"cidr 30", `cidr = "30"`, func(c model.DaemonConfig) bool { return c.CIDR == "30" }},
		{"auto stop 0", `auto_stop_stale_after = "0"`, func(c model.DaemonConfig) bool { return c.AutoStopStaleAfter == 0 }},
		{"auto stop 0s", `auto_stop_stale_after = "0s"`, func(c model.DaemonConfig) bool { return c.AutoStopStaleAfter == 0 }},
		{"auto stop compound", `auto_stop_stale_after = "1h30m"`, func(c model.DaemonConfig) bool { return c.AutoStopStaleAfter == 90*time.Minute }},
		{"tap pool 0", `tap_pool_size = 0`, func(c model.DaemonConfig) bool { return c.TapPoolSize == 0 }},
		{"tap pool 64", `tap_pool_size = 64`, func(c model.DaemonConfig) bool { return c.TapPoolSize == 64 }},
		{"firecracker bare name", `firecracker_bin = "firecracker-v1.7"`, func(c model.DaemonConfig) bool { return c.FirecrackerBin == "firecracker-v1.7" }},
		{"firecracker in home", `firecracker_bin = "~/bin/firecracker"`, func(c model.DaemonConfig) bool { return c.FirecrackerBin == testHome+"/bin/firecracker" }},
		{"ssh key cleaned", `ssh_key_path = "/keys//a/../id"`, func(c model.DaemonConfig) bool { return c.SSHKeyPath == "/keys/id" }},
		{"host home tilde", `host_home_dir = "~"`, func(c model.DaemonConfig) bool { return c.HostHomeDir == testHome }},
		{"bridge name 15 bytes", `bridge_name = "br-0123456789ab"`, func(c model.DaemonConfig) bool { return c.BridgeName == "br-0123456789ab" }},
		{"image name digits", `default_image_name = "0"`, func(c model.DaemonConfig) bool { return c.DefaultImageName == "0" }},
		{"vmm qemu", `vmm = "qemu"`, func(c model.DaemonConfig) bool { return c.VMM == "qemu" }},
		{"helper socket cleaned", `helper_socket = "/run//banger/./helper.sock"`, func(c model.DaemonConfig) bool { return c.HelperSocket == "/run/banger/helper.sock" }},
		{"helper socket in home", `helper_socket = "~/h.sock"`, func(c model.DaemonConfig) bool { return c.HelperSocket == testHome+"/h.sock" }},
		{"helper socket 107 bytes", `helper_socket = "/` + strings.Repeat("s", 106) + `"`, func(c model.DaemonConfig) bool { return len(c.HelperSocket) == 107 }},
		{"bridge ip top of /30", "bridge_ip = \"10.0.0.2\"\ncidr = \"30\"", func(c model.DaemonConfig) bool { return c.BridgeIP == "10.0.0.2" }},
		{"size integer MiB", "[vm_defaults]\nsystem_overlay_size = 512", func(c model.DaemonConfig) bool { return c.VMDefaults.SystemOverlaySizeByte == 512<<20 }},
		{"size lower suffix", "[vm_defaults]\nwork_disk_size = \"2g\"", func(c model.DaemonConfig) bool { return c.VMDefaults.WorkDiskSizeBytes == 2<<30 }},
		{"vm_defaults inline", `vm_defaults = { vcpu_count = 1, memory_mib = 128 }`, func(c model.DaemonConfig) bool {
			return c.VMDefaults.VCPUCount == 1 && c.VMDefaults.MemoryMiB == 128
		}},
		{"memory max", "[vm_defaults]\nmemory_mib = 1048576", func(c model.DaemonConfig) bool { return c.VMDefaults.MemoryMiB == 1048576 }},
		{"file_sync inline array", `file_sync = [{ host = "/home/alice/a", guest = "/root/a" }, { host = "~/b", guest = "~/b", mode = "0" }]`, func(c model.DaemonConfig) bool {
			return reflect.DeepEqual(c.FileSync, []model.FileSyncEntry{{Host: "/home/alice/a", Guest: "/root/a"}, {Host: "~/b", Guest: "/root/b", Mode: "0"}})
		}},
		{"file_sync host kept as written", "[[file_sync]]\nhost = \"~/a/../b/\"\nguest = \"/root/x/./y/\"", func(c model.DaemonConfig) bool {
			return reflect.DeepEqual(c.FileSync, []model.FileSyncEntry{{Host: "~/a/../b/", Guest: "/root/x/y"}})
		}},
		{"file_sync mode 0777", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = \"0777\"", func(c model.DaemonConfig) bool { return c.FileSync[0].Mode == "0777" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, tc.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.src, err)
			}
			if !tc.check(got) {
				t.Errorf("Parse(%q) = %+v", tc.src, got)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		key  string // the key the error must name
	}{
		// Unknown keys.
		{"unknown top-level key", `log_levle = "debug"`, "log_levle"},
		{"key in wrong case", `LOG_LEVEL = "debug"`, "LOG_LEVEL"},
		{"unknown table", "[network]\nmtu = 1500", "network"},
		{"unknown vm_defaults key", "[vm_defaults]\ncpus = 2", "vm_defaults.cpus"},
		{"vm_defaults key in wrong case", "[vm_defaults]\nVCPU_COUNT = 2", "vm_defaults.VCPU_COUNT"},
		{"unknown file_sync key", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\n[[file_sync]]\nhost = \"/home/alice/b\"\nguest = \"~/b\"\nowner = \"root\"", "file_sync[1].owner"},

		// Types.
		{"string for int", `tap_pool_size = "4"`, "tap_pool_size"},
		{"float for int", `tap_pool_size = 4.0`, "tap_pool_size"},
		{"int for string", `log_level = 1`, "log_level"},
		{"table for string", `bridge_name = { a = 1 }`, "bridge_name"},
		{"array for string", `default_dns = ["1.1.1.1"]`, "default_dns"},
		{"string for bool", "[vm_defaults]\nnat_enabled = \"yes\"", "vm_defaults.nat_enabled"},
		{"vm_defaults not a table", `vm_defaults = 3`, "vm_defaults"},
		{"file_sync not an array", `file_sync = "~/.bashrc"`, "file_sync"},
		{"file_sync single table", "[file_sync]\nhost = \"/home/alice/a\"\nguest = \"~/a\"", "file_sync"},
		{"file_sync element not a table", `file_sync = ["/a"]`, "file_sync[0]"},

		// log_level and vmm.
		{"log_level unknown", `log_level = "verbose"`, "log_level"},
		{"log_level padded", `log_level = " info"`, "log_level"},
		{"vmm unknown", `vmm = "kvm"`, "vmm"},
		{"vmm empty", `vmm = ""`, "vmm"},

		// Paths.
		{"firecracker relative path", `firecracker_bin = "bin/firecracker"`, "firecracker_bin"},
		{"firecracker empty", `firecracker_bin = ""`, "firecracker_bin"},
		{"ssh key relative", `ssh_key_path = "keys/id_ed25519"`, "ssh_key_path"},
		{"ssh key other user", `ssh_key_path = "~bob/id"`, "ssh_key_path"},
		{"ssh key empty", `ssh_key_path = ""`, "ssh_key_path"},
		{"host home relative", `host_home_dir = "alice"`, "host_home_dir"},
		{"host home NUL", `host_home_dir = "/home/a\u0000b"`, "host_home_dir"},
		{"helper socket relative", `helper_socket = "run/helper.sock"`, "helper_socket"},
		{"helper socket empty", `helper_socket = ""`, "helper_socket"},
		{"helper socket not a string", `helper_socket = 1`, "helper_socket"},
		{"helper socket too long", `helper_socket = "/` + strings.Repeat("s", 107) + `"`, "helper_socket"},

		// Durations.
		{"auto stop negative", `auto_stop_stale_after = "-5m"`, "auto_stop_stale_after"},
		{"auto stop no unit", `auto_stop_stale_after = "30"`, "auto_stop_stale_after"},
		{"auto stop integer", `auto_stop_stale_after = 0`, "auto_stop_stale_after"},
		{"auto stop garbage", `auto_stop_stale_after = "soon"`, "auto_stop_stale_after"},
		{"stats poll zero", `stats_poll_interval = "0s"`, "stats_poll_interval"},
		{"stats poll negative", `stats_poll_interval = "-1s"`, "stats_poll_interval"},
		{"stats poll garbage", `stats_poll_interval = "10 seconds"`, "stats_poll_interval"},

		// Network.
		{"bridge_ip out of range", `bridge_ip = "300.1.1.1"`, "bridge_ip"},
		{"bridge_ip ipv6", `bridge_ip = "fd00::1"`, "bridge_ip"},
		{"bridge_ip v4-mapped", `bridge_ip = "::ffff:10.0.0.1"`, "bridge_ip"},
		{"bridge_ip with prefix", `bridge_ip = "10.0.0.1/24"`, "bridge_ip"},
		{"bridge_ip hostname", `bridge_ip = "gateway"`, "bridge_ip"},
		{"bridge_ip network address", `bridge_ip = "172.16.0.0"`, "bridge_ip"},
		{"bridge_ip broadcast address", `bridge_ip = "172.16.0.255"`, "bridge_ip"},
		{"bridge_ip network for cidr", "bridge_ip = \"10.1.0.0\"\ncidr = \"16\"", "bridge_ip"},
		{"bridge_ip broadcast for cidr", "bridge_ip = \"10.0.0.3\"\ncidr = \"30\"", "bridge_ip"},
		{"bridge_ip loopback", `bridge_ip = "127.0.0.1"`, "bridge_ip"},
		{"default_dns bad", `default_dns = "1.1.1"`, "default_dns"},
		{"default_dns ipv6", `default_dns = "2606:4700::1111"`, "default_dns"},
		{"cidr too small", `cidr = "7"`, "cidr"},
		{"cidr too large", `cidr = "31"`, "cidr"},
		{"cidr not a number", `cidr = "255.255.255.0"`, "cidr"},
		{"cidr full notation", `cidr = "172.16.0.0/24"`, "cidr"},
		{"cidr empty", `cidr = ""`, "cidr"},
		{"cidr integer too large", `cidr = 32`, "cidr"},
		{"bridge_name empty", `bridge_name = ""`, "bridge_name"},
		{"bridge_name too long", `bridge_name = "br-0123456789abc"`, "bridge_name"},
		{"bridge_name slash", `bridge_name = "br/fc"`, "bridge_name"},
		{"bridge_name space", `bridge_name = "br fc"`, "bridge_name"},
		{"bridge_name tab", `bridge_name = "br\tfc"`, "bridge_name"},
		{"bridge_name colon", `bridge_name = "br:0"`, "bridge_name"},
		{"bridge_name percent", `bridge_name = "br%d"`, "bridge_name"},
		{"bridge_name dot", `bridge_name = "."`, "bridge_name"},

		// Integers.
		{"tap pool negative", `tap_pool_size = -1`, "tap_pool_size"},
		{"tap pool too big", `tap_pool_size = 65`, "tap_pool_size"},
		{"vcpu zero", "[vm_defaults]\nvcpu_count = 0", "vm_defaults.vcpu_count"},
		{"vcpu too many", "[vm_defaults]\nvcpu_count = 33", "vm_defaults.vcpu_count"},
		{"memory too small", "[vm_defaults]\nmemory_mib = 127", "vm_defaults.memory_mib"},
		{"memory too big", "[vm_defaults]\nmemory_mib = 1048577", "vm_defaults.memory_mib"},
		{"memory negative", "[vm_defaults]\nmemory_mib = -2048", "vm_defaults.memory_mib"},
		{"memory huge", "[vm_defaults]\nmemory_mib = 9223372036854775807", "vm_defaults.memory_mib"},

		// Sizes.
		{"size bad suffix", "[vm_defaults]\nsystem_overlay_size = \"8T\"", "vm_defaults.system_overlay_size"},
		{"size words", "[vm_defaults]\nsystem_overlay_size = \"big\"", "vm_defaults.system_overlay_size"},
		{"size empty", "[vm_defaults]\nwork_disk_size = \"\"", "vm_defaults.work_disk_size"},
		{"size zero", "[vm_defaults]\nwork_disk_size = \"0G\"", "vm_defaults.work_disk_size"},
		{"size negative int", "[vm_defaults]\nwork_disk_size = -1", "vm_defaults.work_disk_size"},
		{"size over max", "[vm_defaults]\nwork_disk_size = \"129G\"", "vm_defaults.work_disk_size"},
		{"size float", "[vm_defaults]\nwork_disk_size = 1.5", "vm_defaults.work_disk_size"},

		// Image name.
		{"image name upper case", `default_image_name = "Debian"`, "default_image_name"},
		{"image name leading dash", `default_image_name = "-x"`, "default_image_name"},
		{"image name trailing dash", `default_image_name = "x-"`, "default_image_name"},
		{"image name dot", `default_image_name = "debian.12"`, "default_image_name"},
		{"image name underscore", `default_image_name = "my_image"`, "default_image_name"},
		{"image name empty", `default_image_name = ""`, "default_image_name"},
		{"image name too long", `default_image_name = "` + strings.Repeat("a", 64) + `"`, "default_image_name"},

		// file_sync.
		{"file_sync host missing", "[[file_sync]]\nguest = \"~/a\"", "file_sync[0].host"},
		{"file_sync guest missing", "[[file_sync]]\nhost = \"~/a\"", "file_sync[0].guest"},
		{"file_sync host relative", "[[file_sync]]\nhost = \".bashrc\"\nguest = \"~/.bashrc\"", "file_sync[0].host"},
		{"file_sync host other user", "[[file_sync]]\nhost = \"~bob/.bashrc\"\nguest = \"~/.bashrc\"", "file_sync[0].host"},
		{"file_sync host bare tilde", "[[file_sync]]\nhost = \"~\"\nguest = \"~/home\"", "file_sync[0].host"},
		{"file_sync host whole home", "[[file_sync]]\nhost = \"~/\"\nguest = \"~/home\"", "file_sync[0].host"},
		{"file_sync host leaves home", "[[file_sync]]\nhost = \"~/../bob/.ssh\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host leaves home deep", "[[file_sync]]\nhost = \"~/a/../../etc\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host absolute outside home", "[[file_sync]]\nhost = \"/etc/passwd\"\nguest = \"~/passwd\"", "file_sync[0].host"},
		{"file_sync host absolute escaping home", "[[file_sync]]\nhost = \"/home/alice/../bob/.ssh\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host absolute sibling", "[[file_sync]]\nhost = \"/home/alice2/x\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host absolute home itself", "[[file_sync]]\nhost = \"/home/alice/\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host relative escaping", "[[file_sync]]\nhost = \"../../etc/passwd\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host outside a configured home", "host_home_dir = \"/srv/dev\"\n[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host empty", "[[file_sync]]\nhost = \"\"\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync host not a string", "[[file_sync]]\nhost = 1\nguest = \"~/x\"", "file_sync[0].host"},
		{"file_sync guest outside root", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"/etc/passwd\"", "file_sync[0].guest"},
		{"file_sync guest escapes root", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"/root/../etc\"", "file_sync[0].guest"},
		{"file_sync guest tilde escapes", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/../etc/shadow\"", "file_sync[0].guest"},
		{"file_sync guest root prefix", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"/rootkit/x\"", "file_sync[0].guest"},
		{"file_sync guest is root", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"/root/\"", "file_sync[0].guest"},
		{"file_sync guest relative", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \".bashrc\"", "file_sync[0].guest"},
		{"file_sync mode not octal", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = \"0800\"", "file_sync[0].mode"},
		{"file_sync mode too big", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = \"1777\"", "file_sync[0].mode"},
		{"file_sync mode symbolic", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = \"rw-r--r--\"", "file_sync[0].mode"},
		{"file_sync mode negative", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = \"-600\"", "file_sync[0].mode"},
		{"file_sync mode empty", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = \"\"", "file_sync[0].mode"},
		{"file_sync mode integer", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\nmode = 600", "file_sync[0].mode"},
		{"file_sync third entry", "[[file_sync]]\nhost = \"/home/alice/a\"\nguest = \"~/a\"\n[[file_sync]]\nhost = \"/home/alice/b\"\nguest = \"~/b\"\n[[file_sync]]\nhost = \"/home/alice/c\"\nguest = \"/etc/c\"", "file_sync[2].guest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.src)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error naming %s", tc.src, tc.key)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config /x/config.toml: ") {
				t.Errorf("error %q does not start with the source file", msg)
			}
			if !strings.Contains(msg, tc.key) {
				t.Errorf("error %q does not name %s", msg, tc.key)
			}
			var ke *keyError
			if !errors.As(err, &ke) || ke.Key != tc.key {
				t.Errorf("error %q: want a keyError for key %q, got %#v", msg, tc.key, ke)
			}
		})
	}
}

func TestExpandHome(t *testing.T) {
	for _, tc := range []struct{ path, home, want string }{
		{"~", "/home/a", "/home/a"},
		{"~/", "/home/a", "/home/a"},
		{"~/x/y", "/home/a", "/home/a/x/y"},
		{"~/x/../y", "/home/a", "/home/a/y"},
		{"~bob/x", "/home/a", "~bob/x"},
		{"/abs/~/x", "/home/a", "/abs/~/x"},
		{"rel", "/home/a", "rel"},
		{"", "/home/a", ""},
		{"~/x", "", "~/x"},
	} {
		t.Run(tc.path+"@"+tc.home, func(t *testing.T) {
			if got := ExpandHome(tc.path, tc.home); got != tc.want {
				t.Errorf("ExpandHome(%q, %q) = %q, want %q", tc.path, tc.home, got, tc.want)
			}
		})
	}
}
