// Package model holds banger's domain types — VMs, images, their specs
// and runtime state — and the defaults every other package starts from.
// It has no dependencies inside banger, so the CLI, the daemon, the store
// and the helper can all share it.
package model

import (
	"encoding/json"
	"time"
)

// Defaults for the host network, VM sizing and the daemon's background
// loops. Config and per-request values override them.
const (
	DefaultBridgeName         = "br-fc"
	DefaultBridgeIP           = "172.16.0.1"
	DefaultCIDR               = "24"
	DefaultDNS                = "1.1.1.1"
	DefaultSystemOverlaySize  = 8 * 1024 * 1024 * 1024
	DefaultWorkDiskSize       = 8 * 1024 * 1024 * 1024
	DefaultHarvestMaxBundle   = 1024 * 1024 * 1024
	DefaultMemoryMiB          = 2048
	DefaultVCPUCount          = 2
	DefaultStatsPollInterval  = 10 * time.Second
	DefaultStaleSweepInterval = 1 * time.Minute

	// MaxDiskBytes caps every disk size a user can ask for, so a typo
	// ("8000G") fails at parse time instead of filling the host.
	MaxDiskBytes int64 = 128 * 1024 * 1024 * 1024
)

// VMState is the declared lifecycle state of a VM.
type VMState string

const (
	VMStateCreated VMState = "created"
	VMStateRunning VMState = "running"
	VMStateStopped VMState = "stopped"
	VMStateError   VMState = "error"
)

// Valid reports whether s is one of the four known states.
func (s VMState) Valid() bool {
	switch s {
	case VMStateCreated, VMStateRunning, VMStateStopped, VMStateError:
		return true
	}
	return false
}

// VMM choices for DaemonConfig.VMM. "auto" picks firecracker when its
// binary is found and /dev/kvm is usable, qemu otherwise.
const (
	VMMAuto        = "auto"
	VMMFirecracker = "firecracker"
	VMMQEMU        = "qemu"
)

// DaemonConfig is bangerd's configuration after defaults are applied and
// the config file is validated (see internal/config).
type DaemonConfig struct {
	LogLevel           string
	FirecrackerBin     string
	SSHKeyPath         string
	HostHomeDir        string
	AutoStopStaleAfter time.Duration
	StatsPollInterval  time.Duration
	BridgeName         string
	BridgeIP           string
	CIDR               string
	TapPoolSize        int
	DefaultDNS         string
	DefaultImageName   string
	FileSync           []FileSyncEntry
	VMDefaults         VMDefaultsOverride
	// VMM is the driver choice: VMMAuto, VMMFirecracker or VMMQEMU.
	VMM string
	// HelperSocket is where banger-helper listens.
	HelperSocket string
	// HarvestMaxBundleBytes bounds the git bundle a guest hands back in a
	// workspace harvest.
	HarvestMaxBundleBytes int64
}

// VMDefaultsOverride replaces the built-in VM sizing defaults for every
// create that does not set a value itself. A zero field means "keep the
// built-in default".
type VMDefaultsOverride struct {
	VCPUCount             int
	MemoryMiB             int
	SystemOverlaySizeByte int64
	WorkDiskSizeBytes     int64
	NATEnabled            bool
}

// FileSyncEntry is a user-declared host→guest file or directory copy
// applied to each VM's work disk at vm create time. Host is expanded
// against the configured owner home for "~/..." and must stay within
// that home; Guest is expanded against /root (banger VMs are
// single-user root). A host directory is copied recursively, a file as a
// file. A missing host path is a soft skip (warned, not fatal). Mode
// defaults to 0600 for files and 0755 for directories.
type FileSyncEntry struct {
	Host  string
	Guest string
	Mode  string
}

// Image is a bootable root filesystem and kernel. Managed images were
// built by banger and their artifacts are deleted with them; unmanaged
// ones were registered by the user and their files are never touched.
type Image struct {
	ID                            string    `json:"id"`
	Name                          string    `json:"name"`
	Managed                       bool      `json:"managed"`
	ArtifactDir                   string    `json:"artifact_dir,omitempty"`
	RootfsPath                    string    `json:"rootfs_path"`
	WorkSeedPath                  string    `json:"work_seed_path,omitempty"`
	KernelPath                    string    `json:"kernel_path"`
	InitrdPath                    string    `json:"initrd_path,omitempty"`
	ModulesDir                    string    `json:"modules_dir,omitempty"`
	BuildSize                     string    `json:"build_size,omitempty"`
	SeededSSHPublicKeyFingerprint string    `json:"seeded_ssh_public_key_fingerprint,omitempty"`
	CreatedAt                     time.Time `json:"created_at"`
	UpdatedAt                     time.Time `json:"updated_at"`
}

// VMSpec is what the user asked for: sizes and switches that survive
// restarts and that `vm set` may change.
type VMSpec struct {
	VCPUCount             int   `json:"vcpu_count"`
	MemoryMiB             int   `json:"memory_mib"`
	SystemOverlaySizeByte int64 `json:"system_overlay_size_bytes"`
	WorkDiskSizeBytes     int64 `json:"work_disk_size_bytes"`
	NATEnabled            bool  `json:"nat_enabled"`
}

// VMRuntime holds the durable runtime state that the daemon needs to
// reach a VM: identity, declared state, and deterministic derived paths.
// The authoritative live handle set lives in the VM's handles.json, but
// teardown-critical storage and network identifiers are mirrored here as
// recovery fallbacks, so restart-time cleanup still works when
// handles.json is missing or corrupt.
//
// Everything in VMRuntime is safe to persist: the paths are deterministic
// from (VM ID, layout) and survive restart unchanged; GuestIP and DNSName
// are assigned at create time and never move; LastError carries the last
// failure message for debugging. State mirrors VMRecord.State.
type VMRuntime struct {
	State       VMState `json:"state"`
	GuestIP     string  `json:"guest_ip"`
	APISockPath string  `json:"api_sock_path,omitempty"`
	VSockPath   string  `json:"vsock_path,omitempty"`
	VSockCID    uint32  `json:"vsock_cid,omitempty"`
	LogPath     string  `json:"log_path,omitempty"`
	MetricsPath string  `json:"metrics_path,omitempty"`
	DNSName     string  `json:"dns_name,omitempty"`
	VMDir       string  `json:"vm_dir"`

	// Chosen at create and kept for the VM's life: its VMM driver, how
	// its system overlay was made, and its MAC (derived from GuestIP).
	VMM             string `json:"vmm,omitempty"`
	OverlayStrategy string `json:"overlay_strategy,omitempty"`
	MAC             string `json:"mac,omitempty"`

	// Teardown fallback fields mirror the handle cache onto the VM row.
	// They are recovery-only: while the daemon is alive, the handles stay
	// authoritative. On restart, cleanup falls back to these values when
	// handles.json is missing or corrupt.
	TapDevice     string `json:"tap_device,omitempty"`
	BaseLoop      string `json:"base_loop,omitempty"`
	COWLoop       string `json:"cow_loop,omitempty"`
	DMName        string `json:"dm_name,omitempty"`
	DMDev         string `json:"dm_dev,omitempty"`
	SystemOverlay string `json:"system_overlay_path"`
	WorkDiskPath  string `json:"work_disk_path"`
	LastError     string `json:"last_error,omitempty"`
}

// VMStats is the last sample taken by the stats poller.
type VMStats struct {
	CollectedAt        time.Time      `json:"collected_at,omitempty"`
	CPUPercent         float64        `json:"cpu_percent,omitempty"`
	RSSBytes           int64          `json:"rss_bytes,omitempty"`
	VSZBytes           int64          `json:"vsz_bytes,omitempty"`
	SystemOverlayBytes int64          `json:"system_overlay_bytes,omitempty"`
	WorkDiskBytes      int64          `json:"work_disk_bytes,omitempty"`
	MetricsRaw         map[string]any `json:"metrics_raw,omitempty"`
}

// VMRecord is one VM as the store keeps it.
type VMRecord struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	ImageID       string    `json:"image_id"`
	State         VMState   `json:"state"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	LastTouchedAt time.Time `json:"last_touched_at"`
	Spec          VMSpec    `json:"spec"`
	Runtime       VMRuntime `json:"runtime"`
	Stats         VMStats   `json:"stats"`
}

// VMCreateRequest is a create as the user asked for it; zero values mean
// "use the default".
type VMCreateRequest struct {
	Name                  string
	ImageName             string
	VCPUCount             int
	MemoryMiB             int
	SystemOverlaySizeByte int64
	WorkDiskSizeBytes     int64
	NATEnabled            bool
	NoStart               bool
}

// VMSetRequest changes a VM's spec; nil fields are left alone.
type VMSetRequest struct {
	IDOrName          string
	VCPUCount         *int
	MemoryMiB         *int
	WorkDiskSizeBytes *int64
	NATEnabled        *bool
}

// WorkspacePrepareMode says how a host git repository is brought into a
// VM.
type WorkspacePrepareMode string

const (
	WorkspacePrepareModeShallowOverlay WorkspacePrepareMode = "shallow_overlay"
	WorkspacePrepareModeFullCopy       WorkspacePrepareMode = "full_copy"
	WorkspacePrepareModeMetadataOnly   WorkspacePrepareMode = "metadata_only"
)

// WorkspacePrepareResult records where a workspace landed in the guest
// and which commit it started from, so its work can come back as a
// branch.
type WorkspacePrepareResult struct {
	VMID          string               `json:"vm_id"`
	SourcePath    string               `json:"source_path"`
	RepoRoot      string               `json:"repo_root"`
	RepoName      string               `json:"repo_name"`
	GuestPath     string               `json:"guest_path"`
	Mode          WorkspacePrepareMode `json:"mode"`
	HeadCommit    string               `json:"head_commit,omitempty"`
	CurrentBranch string               `json:"current_branch,omitempty"`
	BranchName    string               `json:"branch_name,omitempty"`
	BaseCommit    string               `json:"base_commit,omitempty"`
	PreparedAt    time.Time            `json:"prepared_at"`
}

// OperationState is where an asynchronous operation (an image build, a
// VM create) stands.
type OperationState string

const (
	OperationRunning   OperationState = "running"
	OperationSucceeded OperationState = "succeeded"
	OperationFailed    OperationState = "failed"
	OperationCancelled OperationState = "cancelled"
)

// Done reports whether the operation has finished, one way or another.
func (s OperationState) Done() bool { return s != OperationRunning }

// Operation is the durable record of an asynchronous operation. Its ID is
// the op id the request that began it was dispatched under, so the same
// id finds its status, its daemon log lines and its helper log lines.
type Operation struct {
	ID           string          `json:"id"`
	Kind         string          `json:"kind"`   // "image.build", "vm.create"
	Target       string          `json:"target"` // the image or VM name
	State        OperationState  `json:"state"`
	Stage        string          `json:"stage,omitempty"`
	Result       json.RawMessage `json:"result,omitempty"`
	ErrorCode    string          `json:"error_code,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}
