// Package config owns bangerd's config file: the built-in defaults, the
// TOML schema (one key per model.DaemonConfig field), and the validation
// that turns a user's file into a model.DaemonConfig or into errors that
// name the file, the key and what is wrong with it. Nothing else in banger
// reads config.toml.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"banger/internal/helperapi"
	"banger/internal/model"
	"banger/internal/paths"
)

// Defaults is the configuration bangerd runs with when config.toml is
// missing or empty; every key a file sets overrides one field of it.
func Defaults(layout paths.Layout, home string) model.DaemonConfig {
	return model.DaemonConfig{
		LogLevel:           "info",
		FirecrackerBin:     "firecracker",
		SSHKeyPath:         filepath.Join(layout.StateDir, "ssh", "id_ed25519"),
		HostHomeDir:        home,
		AutoStopStaleAfter: 0, // disabled
		StatsPollInterval:  model.DefaultStatsPollInterval,
		BridgeName:         model.DefaultBridgeName,
		BridgeIP:           model.DefaultBridgeIP,
		CIDR:               model.DefaultCIDR,
		TapPoolSize:        2,
		DefaultDNS:         model.DefaultDNS,
		DefaultImageName:   "default",
		VMM:                model.VMMAuto,
		HelperSocket:       helperapi.DefaultSocketPath,

		HarvestMaxBundleBytes: model.DefaultHarvestMaxBundle,
	}
}

// Load reads layout.ConfigFile. A missing file at the default path is
// not an error: bangerd runs on Defaults until the user writes one. A
// file the user named (layout.ConfigNamed) must exist: running on the
// defaults instead would hide a typo in the path.
func Load(layout paths.Layout, home string) (model.DaemonConfig, error) {
	data, err := os.ReadFile(layout.ConfigFile)
	switch {
	case errors.Is(err, fs.ErrNotExist) && layout.ConfigNamed:
		return model.DaemonConfig{}, layout.MissingConfig()
	case errors.Is(err, fs.ErrNotExist):
		return Defaults(layout, home), nil
	case err != nil:
		return model.DaemonConfig{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, layout.ConfigFile, layout, home)
}

// Parse validates a config file's contents and applies them over
// Defaults. source names the file in error messages. home is what a
// leading "~/" means in ssh_key_path, host_home_dir and firecracker_bin
// (file_sync hosts keep their "~/" until VM create, where it means
// HostHomeDir).
//
// Checks run in stages and each stage reports every problem it finds
// (joined with errors.Join): TOML syntax, then the shape of the
// [vm_defaults] and [[file_sync]] tables, then unknown keys, then values.
// Unknown keys stop before values are checked, because a misspelt key
// usually explains a "wrong" value elsewhere.
func Parse(data []byte, source string, layout paths.Layout, home string) (model.DaemonConfig, error) {
	var raw rawConfig
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return model.DaemonConfig{}, newSyntaxError(source, data, pe)
		}
		return model.DaemonConfig{}, fmt.Errorf("config %s: %w", source, err)
	}

	p := &parser{source: source, home: home}
	var vmDefaults rawVMDefaults
	if md.IsDefined("vm_defaults") {
		if md.Type("vm_defaults") != "Hash" {
			var v any
			_ = md.PrimitiveDecode(raw.VMDefaults, &v) // into any: cannot fail
			p.fail("vm_defaults", fmt.Errorf("expected a table (a [vm_defaults] section), got %s", describe(v)))
		} else if err := md.PrimitiveDecode(raw.VMDefaults, &vmDefaults); err != nil {
			p.fail("vm_defaults", fmt.Errorf("decode table: %w", err))
		}
	}
	syncTables := p.fileSyncTables(raw.FileSync)
	if err := p.err(); err != nil {
		return model.DaemonConfig{}, err
	}

	p.unknownKeys(md, syncTables)
	if err := p.err(); err != nil {
		return model.DaemonConfig{}, err
	}

	cfg := Defaults(layout, home)
	p.apply(&cfg, &raw, &vmDefaults)
	cfg.FileSync = p.fileSync(syncTables, cfg.HostHomeDir)
	if err := p.err(); err != nil {
		return model.DaemonConfig{}, err
	}
	return cfg, nil
}

// ExpandHome replaces a leading "~" or "~/" in path with home. Other
// paths, including "~user/...", come back unchanged, as does every path
// when home is empty (so it stays visibly unexpanded).
func ExpandHome(path, home string) string {
	if home == "" {
		return path
	}
	switch {
	case path == "~":
		return home
	case strings.HasPrefix(path, "~/"):
		return filepath.Join(home, path[2:])
	}
	return path
}

// rawConfig is the file as decoded, before validation. Leaves are `any`
// so a value of the wrong TOML type becomes our error naming the key, not
// a decoder error for the whole file. file_sync is decoded by hand so an
// unknown key can be reported with its entry's index.
type rawConfig struct {
	LogLevel           any            `toml:"log_level"`
	FirecrackerBin     any            `toml:"firecracker_bin"`
	SSHKeyPath         any            `toml:"ssh_key_path"`
	HostHomeDir        any            `toml:"host_home_dir"`
	AutoStopStaleAfter any            `toml:"auto_stop_stale_after"`
	StatsPollInterval  any            `toml:"stats_poll_interval"`
	BridgeName         any            `toml:"bridge_name"`
	BridgeIP           any            `toml:"bridge_ip"`
	CIDR               any            `toml:"cidr"`
	TapPoolSize        any            `toml:"tap_pool_size"`
	DefaultDNS         any            `toml:"default_dns"`
	DefaultImageName   any            `toml:"default_image_name"`
	VMM                any            `toml:"vmm"`
	HelperSocket       any            `toml:"helper_socket"`
	HarvestMaxBundle   any            `toml:"harvest_max_bundle_size"`
	FileSync           any            `toml:"file_sync"`
	VMDefaults         toml.Primitive `toml:"vm_defaults"`
}

// rawVMDefaults is the [vm_defaults] table as decoded.
type rawVMDefaults struct {
	VCPUCount         any `toml:"vcpu_count"`
	MemoryMiB         any `toml:"memory_mib"`
	SystemOverlaySize any `toml:"system_overlay_size"`
	WorkDiskSize      any `toml:"work_disk_size"`
	NATEnabled        any `toml:"nat_enabled"`
}

// Key names, exactly as a file must spell them. The decoder matches
// struct fields case-insensitively when there is no exact match, so these
// lists are also how "LOG_LEVEL" is caught as unknown.
var (
	topLevelKeys = []string{
		"log_level", "firecracker_bin", "ssh_key_path", "host_home_dir",
		"auto_stop_stale_after", "stats_poll_interval", "bridge_name",
		"bridge_ip", "cidr", "tap_pool_size", "default_dns",
		"default_image_name", "vmm", "helper_socket", "file_sync",
		"harvest_max_bundle_size", "vm_defaults",
	}
	vmDefaultsKeys = []string{
		"vcpu_count", "memory_mib", "system_overlay_size", "work_disk_size",
		"nat_enabled",
	}
	fileSyncKeys = []string{"host", "guest", "mode"}
)

// parser collects the problems found while validating one file.
type parser struct {
	source string
	home   string
	errs   []error
	failed map[string]bool // keys that already have an error
}

func (p *parser) fail(key string, err error) {
	p.errs = append(p.errs, &keyError{Source: p.source, Key: key, Err: err})
	if p.failed == nil {
		p.failed = make(map[string]bool)
	}
	p.failed[key] = true
}

func (p *parser) err() error {
	return errors.Join(p.errs...)
}

// unknownKeys reports keys the schema does not have. Keys under an
// unknown table, or under a known key whose value is a table by mistake,
// are left out: the first is reported once at the table, the second as a
// type error when values are checked.
func (p *parser) unknownKeys(md toml.MetaData, syncTables []map[string]any) {
	unknown := func(k toml.Key) bool {
		switch {
		case len(k) == 1:
			return !slices.Contains(topLevelKeys, k[0])
		case len(k) == 2 && k[0] == "vm_defaults":
			return !slices.Contains(vmDefaultsKeys, k[1])
		}
		return false
	}
	seen := make(map[string]bool)
	report := func(k toml.Key) {
		if name := k.String(); !seen[name] {
			seen[name] = true
			p.fail(name, unknownKeyError(k[len(k)-1], schemaFor(k)))
		}
	}
	for _, k := range md.Undecoded() {
		if unknown(k) {
			report(k)
		}
	}
	// Keys the decoder took only because they match a field when case is
	// ignored.
	for _, k := range md.Keys() {
		if unknown(k) {
			report(k)
		}
	}
	for i, table := range syncTables {
		for _, key := range sortedKeys(table) {
			if !slices.Contains(fileSyncKeys, key) {
				p.fail(fmt.Sprintf("file_sync[%d].%s", i, key), unknownKeyError(key, fileSyncKeys))
			}
		}
	}
}

// schemaFor returns the keys allowed next to k.
func schemaFor(k toml.Key) []string {
	if len(k) == 2 && k[0] == "vm_defaults" {
		return vmDefaultsKeys
	}
	return topLevelKeys
}

// unknownKeyError suggests the key that was probably meant: the same key
// in another case, or one a typo or two away.
func unknownKeyError(key string, known []string) error {
	for _, k := range known {
		if strings.EqualFold(k, key) || editDistance(k, key) <= 2 {
			return fmt.Errorf("unknown key (did you mean %s?)", k)
		}
	}
	return errors.New("unknown key")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// apply checks each value the file sets and writes the valid ones into
// cfg. A field whose value is invalid keeps its default; the caller
// discards cfg when any check failed.
func (p *parser) apply(cfg *model.DaemonConfig, raw *rawConfig, vd *rawVMDefaults) {
	fields := []struct {
		key string
		val any
		set func(any) error
	}{
		{"log_level", raw.LogLevel, stringField(&cfg.LogLevel, parseLogLevel)},
		{"firecracker_bin", raw.FirecrackerBin, stringField(&cfg.FirecrackerBin, p.parseCommand)},
		{"ssh_key_path", raw.SSHKeyPath, stringField(&cfg.SSHKeyPath, p.parseAbsPath)},
		{"host_home_dir", raw.HostHomeDir, stringField(&cfg.HostHomeDir, p.parseAbsPath)},
		{"auto_stop_stale_after", raw.AutoStopStaleAfter, durationField(&cfg.AutoStopStaleAfter, true)},
		{"stats_poll_interval", raw.StatsPollInterval, durationField(&cfg.StatsPollInterval, false)},
		{"bridge_name", raw.BridgeName, stringField(&cfg.BridgeName, parseInterfaceName)},
		{"bridge_ip", raw.BridgeIP, stringField(&cfg.BridgeIP, parseIPv4)},
		{"cidr", raw.CIDR, cidrField(&cfg.CIDR)},
		{"tap_pool_size", raw.TapPoolSize, intField(&cfg.TapPoolSize, 0, 64)},
		{"default_dns", raw.DefaultDNS, stringField(&cfg.DefaultDNS, parseIPv4)},
		{"default_image_name", raw.DefaultImageName, stringField(&cfg.DefaultImageName, parseDNSLabel)},
		{"vmm", raw.VMM, stringField(&cfg.VMM, parseVMM)},
		{"helper_socket", raw.HelperSocket, stringField(&cfg.HelperSocket, p.parseSocketPath)},
		{"harvest_max_bundle_size", raw.HarvestMaxBundle, sizeField(&cfg.HarvestMaxBundleBytes)},
		{"vm_defaults.vcpu_count", vd.VCPUCount, intField(&cfg.VMDefaults.VCPUCount, model.MinVCPUCount, model.MaxVCPUCount)},
		{"vm_defaults.memory_mib", vd.MemoryMiB, intField(&cfg.VMDefaults.MemoryMiB, model.MinMemoryMiB, model.MaxMemoryMiB)},
		{"vm_defaults.system_overlay_size", vd.SystemOverlaySize, sizeField(&cfg.VMDefaults.SystemOverlaySizeByte)},
		{"vm_defaults.work_disk_size", vd.WorkDiskSize, sizeField(&cfg.VMDefaults.WorkDiskSizeBytes)},
		{"vm_defaults.nat_enabled", vd.NATEnabled, boolField(&cfg.VMDefaults.NATEnabled)},
	}
	for _, f := range fields {
		if f.val == nil { // TOML has no null: nil means the key is absent
			continue
		}
		if err := f.set(f.val); err != nil {
			p.fail(f.key, err)
		}
	}
	if !p.failed["bridge_ip"] && !p.failed["cidr"] {
		if err := checkBridgeHost(cfg.BridgeIP, cfg.CIDR); err != nil {
			p.fail("bridge_ip", err)
		}
	}
}
