package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		raw     string
		want    int64
		wantErr string
	}{
		{"1K", 1024, ""},
		{"1k", 1024, ""},
		{"512M", 512 * mib, ""},
		{"512m", 512 * mib, ""},
		{"8G", 8 * gib, ""},
		{"8g", 8 * gib, ""},
		{" 2G ", 2 * gib, ""},
		{"2048", 2048 * mib, ""}, // a bare number is MiB
		{"1", mib, ""},
		{"+1G", gib, ""}, // as the seed's strconv.ParseInt reads it
		{"128G", MaxDiskBytes, ""},
		{"131072M", MaxDiskBytes, ""},
		{"", 0, "no size given"},
		{"   ", 0, "no size given"},
		{"0", 0, "not more than 0"},
		{"0G", 0, "not more than 0"},
		{"-1G", 0, "not more than 0"},
		{"-5", 0, "not more than 0"},
		{"-99999999999999999999", 0, "not more than 0"},
		{"129G", 0, "more than the maximum, 128G"},
		{"131073M", 0, "more than the maximum, 128G"},
		{"134217729K", 0, "more than the maximum, 128G"},
		// Would overflow int64 if multiplied before the cap check.
		{"9223372036854775807K", 0, "more than the maximum, 128G"},
		{"8589934592G", 0, "more than the maximum, 128G"},
		{"99999999999999999999", 0, "more than the maximum, 128G"},
		{"8GB", 0, `unit "B" is not K, M or G`},
		{"8T", 0, `unit "T" is not K, M or G`},
		{"1.5G", 0, `"1.5" is not a whole number`},
		{"1.5", 0, `"1.5" is not a whole number`},
		{"G", 0, "no number before the unit"},
		{"abc", 0, "not a size"},
		{"big", 0, "not a size"},
		{"8 G", 0, `"8 " is not a whole number`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseSize(tt.raw)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseSize(%q) = %d, %v; want error %q", tt.raw, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.raw, got, err, tt.want)
			}
		})
	}
}

// TestSizeError: what a refused size tells the user: what named it, the
// value, why, and what is accepted — never a strconv error.
func TestSizeError(t *testing.T) {
	for _, tc := range []struct{ what, raw, want string }{
		{"--disk", "1.5G", `--disk "1.5G": "1.5" is not a whole number; use a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)`},
		{"--disk", "abc", `--disk "abc": not a size; use a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)`},
		{"vm_defaults.work_disk_size:", "8T", `vm_defaults.work_disk_size: "8T": unit "T" is not K, M or G; use a whole number with K, M or G, e.g. 1536M or 8G (a bare number is MiB)`},
	} {
		_, err := ParseSize(tc.raw)
		if got := SizeError(tc.what, tc.raw, err).Error(); got != tc.want {
			t.Errorf("SizeError(%q, %q):\n got %s\nwant %s", tc.what, tc.raw, got, tc.want)
		}
	}
}

// seedParseSize is the seed's ParseSize, kept to prove the rules did not
// change when the messages did.
func seedParseSize(raw string) (int64, error) {
	if raw == "" {
		return 0, errors.New("size is required")
	}
	raw = strings.TrimSpace(strings.ToUpper(raw))
	if raw == "" {
		return 0, errors.New("size is required")
	}
	unit := raw[len(raw)-1]
	multiplier := int64(1024 * 1024)
	number := raw
	switch unit {
	case 'K':
		multiplier = 1024
		number = raw[:len(raw)-1]
	case 'M':
		multiplier = 1024 * 1024
		number = raw[:len(raw)-1]
	case 'G':
		multiplier = 1024 * 1024 * 1024
		number = raw[:len(raw)-1]
	default:
		if unit < '0' || unit > '9' {
			return 0, fmt.Errorf("unsupported size suffix: %q", string(unit))
		}
	}
	value, err := strconv.ParseInt(number, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse size %q: %w", raw, err)
	}
	result := value * multiplier
	if result <= 0 {
		return 0, fmt.Errorf("size must be positive: %q", raw)
	}
	if result > MaxDiskBytes {
		return 0, fmt.Errorf("size exceeds max of %d bytes", MaxDiskBytes)
	}
	return result, nil
}

// sameAsSeed reports whether ParseSize and the seed's agree on raw. The
// one difference allowed: a number so large that the seed's
// value*multiplier wraps around, which the seed may accept as a small
// size and ParseSize refuses.
func sameAsSeed(raw string) (bool, string) {
	got, gerr := ParseSize(raw)
	want, werr := seedParseSize(raw)
	if (gerr == nil) == (werr == nil) && got == want {
		return true, ""
	}
	if werr == nil && gerr != nil && strings.HasPrefix(gerr.Error(), "more than the maximum") {
		return true, "" // the seed's overflow
	}
	return false, fmt.Sprintf("ParseSize(%q) = %d, %v; the seed's = %d, %v", raw, got, gerr, want, werr)
}

func TestParseSizeKeepsTheSeedsRules(t *testing.T) {
	for _, raw := range []string{"", " ", "1", "1k", "1K", "512m", "8g", "8G ", " 8G", "+8G", "-8G", "0", "0K",
		"1.5G", "abc", "8GB", "8T", "G", "k", "128G", "129G", "131072M", "9223372036854775807K", "99999999999999999999",
		"8 G", "0x10", "1_000", "１G", "8ǵ", "ıK"} {
		if ok, why := sameAsSeed(raw); !ok {
			t.Error(why)
		}
	}
}

func FuzzParseSizeKeepsTheSeedsRules(f *testing.F) {
	for _, seed := range []string{"8G", "512m", "1.5G", "abc", "-1K", "99999999999999999999", " 2g "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if ok, why := sameAsSeed(raw); !ok {
			t.Error(why)
		}
	})
}

func TestFormatSizeBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{8 * gib, "8G"},
		{DefaultWorkDiskSize, "8G"},
		{1536 * mib, "1536M"},
		{mib, "1M"},
		{1536 * kib, "1536K"},
		{1024, "1K"},
		{1000, "1000"},
		{1, "1"},
		{0, "0G"},
	}
	for _, tt := range tests {
		if got := FormatSizeBytes(tt.in); got != tt.want {
			t.Errorf("FormatSizeBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	for _, n := range []int64{kib, 3 * kib, mib, 1537 * kib, gib, 100 * gib, MaxDiskBytes} {
		got, err := ParseSize(FormatSizeBytes(n))
		if err != nil || got != n {
			t.Errorf("ParseSize(FormatSizeBytes(%d)) = %d, %v", n, got, err)
		}
	}
}

func TestIDs(t *testing.T) {
	id, err := NewID()
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("NewID() = %q, %v", id, err)
	}
	other, _ := NewID()
	if id == other {
		t.Error("NewID returned the same id twice")
	}
	op, err := NewOpID()
	if err != nil || !regexp.MustCompile(`^op-[0-9a-f]{12}$`).MatchString(op) {
		t.Fatalf("NewOpID() = %q, %v", op, err)
	}
}

func TestNow(t *testing.T) {
	now := Now()
	if now.Location() != time.UTC || now.Nanosecond() != 0 {
		t.Errorf("Now() = %v, want UTC truncated to the second", now)
	}
	if d := time.Since(now); d < 0 || d > 2*time.Second {
		t.Errorf("Now() is %v away from the clock", d)
	}
}

func TestVMStateValid(t *testing.T) {
	for _, s := range []VMState{VMStateCreated, VMStateRunning, VMStateStopped, VMStateError} {
		if !s.Valid() {
			t.Errorf("%q not valid", s)
		}
	}
	for _, s := range []VMState{"", "paused", "Running"} {
		if s.Valid() {
			t.Errorf("%q valid", s)
		}
	}
}

// TestJSONFieldNames pins the wire names: clients and stored rows depend
// on them.
func TestJSONFieldNames(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	vm := VMRecord{
		ID: "v", Name: "n", ImageID: "i", State: VMStateRunning,
		CreatedAt: at, UpdatedAt: at, LastTouchedAt: at,
		Spec: VMSpec{VCPUCount: 2, MemoryMiB: 2048, SystemOverlaySizeByte: 1, WorkDiskSizeBytes: 2, NATEnabled: true},
		Runtime: VMRuntime{
			State: VMStateRunning, GuestIP: "172.16.0.2", APISockPath: "a", VSockPath: "b", VSockCID: 3,
			LogPath: "c", MetricsPath: "d", DNSName: "n.vm", VMDir: "e", TapDevice: "f", BaseLoop: "g",
			COWLoop: "h", DMName: "j", DMDev: "k", SystemOverlay: "l", WorkDiskPath: "m", LastError: "o",
		},
		Stats: VMStats{CollectedAt: at, CPUPercent: 1.5, RSSBytes: 1, VSZBytes: 2, SystemOverlayBytes: 3, WorkDiskBytes: 4, MetricsRaw: map[string]any{"x": 1}},
	}
	want := `{"id":"v","name":"n","image_id":"i","state":"running","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","last_touched_at":"2026-01-02T03:04:05Z",` +
		`"spec":{"vcpu_count":2,"memory_mib":2048,"system_overlay_size_bytes":1,"work_disk_size_bytes":2,"nat_enabled":true},` +
		`"runtime":{"state":"running","guest_ip":"172.16.0.2","api_sock_path":"a","vsock_path":"b","vsock_cid":3,"log_path":"c","metrics_path":"d","dns_name":"n.vm","vm_dir":"e","tap_device":"f","base_loop":"g","cow_loop":"h","dm_name":"j","dm_dev":"k","system_overlay_path":"l","work_disk_path":"m","last_error":"o"},` +
		`"stats":{"collected_at":"2026-01-02T03:04:05Z","cpu_percent":1.5,"rss_bytes":1,"vsz_bytes":2,"system_overlay_bytes":3,"work_disk_bytes":4,"metrics_raw":{"x":1}}}`
	got, err := json.Marshal(vm)
	if err != nil || string(got) != want {
		t.Errorf("VMRecord JSON:\n got %s\nwant %s", got, want)
	}

	img := Image{ID: "i", Name: "default", Managed: true, ArtifactDir: "a", RootfsPath: "r", WorkSeedPath: "w", KernelPath: "k",
		InitrdPath: "in", ModulesDir: "m", BuildSize: "4G", SeededSSHPublicKeyFingerprint: "SHA256:x", CreatedAt: at, UpdatedAt: at}
	wantImg := `{"id":"i","name":"default","managed":true,"artifact_dir":"a","rootfs_path":"r","work_seed_path":"w","kernel_path":"k","initrd_path":"in","modules_dir":"m","build_size":"4G","seeded_ssh_public_key_fingerprint":"SHA256:x","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`
	if got, _ := json.Marshal(img); string(got) != wantImg {
		t.Errorf("Image JSON:\n got %s\nwant %s", got, wantImg)
	}
	// Optional fields are omitted when empty.
	if got, _ := json.Marshal(Image{}); strings.Contains(string(got), "initrd_path") || strings.Contains(string(got), "artifact_dir") {
		t.Errorf("empty Image JSON carries optional fields: %s", got)
	}

	ws := WorkspacePrepareResult{VMID: "v", SourcePath: "s", RepoRoot: "r", RepoName: "n", GuestPath: "/root/n", Mode: WorkspacePrepareModeShallowOverlay,
		HeadCommit: "h", CurrentBranch: "main", BranchName: "b", BaseCommit: "c", PreparedAt: at}
	wantWS := `{"vm_id":"v","source_path":"s","repo_root":"r","repo_name":"n","guest_path":"/root/n","mode":"shallow_overlay","head_commit":"h","current_branch":"main","branch_name":"b","base_commit":"c","prepared_at":"2026-01-02T03:04:05Z"}`
	if got, _ := json.Marshal(ws); string(got) != wantWS {
		t.Errorf("WorkspacePrepareResult JSON:\n got %s\nwant %s", got, wantWS)
	}
}

func TestDefaults(t *testing.T) {
	if DefaultBridgeName != "br-fc" || DefaultBridgeIP != "172.16.0.1" || DefaultCIDR != "24" || DefaultDNS != "1.1.1.1" {
		t.Error("network defaults changed")
	}
	if DefaultSystemOverlaySize != 8*gib || DefaultWorkDiskSize != 8*gib || DefaultMemoryMiB != 2048 || DefaultVCPUCount != 2 {
		t.Error("VM sizing defaults changed")
	}
	if DefaultStatsPollInterval != 10*time.Second || DefaultStaleSweepInterval != time.Minute || MaxDiskBytes != 128*gib {
		t.Error("loop or cap defaults changed")
	}
}

func TestValidateName(t *testing.T) {
	for _, good := range []string{"a", "dev", "dev-1", "0day", strings.Repeat("x", 63)} {
		if err := ValidateName("vm", good); err != nil {
			t.Errorf("ValidateName(%q) = %v", good, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "Dev", "dev_1", "dev.1", "dév", strings.Repeat("x", 64), "a b", "../x"} {
		if err := ValidateName("image", bad); err == nil || !strings.Contains(err.Error(), "image name") {
			t.Errorf("ValidateName(%q) = %v", bad, err)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 300 << 20: "300.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
