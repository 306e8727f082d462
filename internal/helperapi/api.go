// Package helperapi is the contract between bangerd and banger-helper:
// the helper's method names, parameter and result types, its config file
// format, and a typed client. The daemon and `banger system install`
// import it; neither imports the helper itself.
package helperapi

import "strconv"

// Helper methods: a closed list.
const (
	MethodStatus       = "helper.status"
	MethodBridgeEnsure = "bridge.ensure"
	MethodTapCreate    = "tap.create"
	MethodTapDelete    = "tap.delete"
	MethodNATEnable    = "nat.enable"
	MethodNATDisable   = "nat.disable"
	// overlay.attach takes two open files passed with the request
	// (SCM_RIGHTS): the image's root file system, opened read-only, and
	// the VM's copy-on-write file, opened read-write. The helper never
	// opens a path the caller names.
	MethodOverlayAttach = "overlay.attach"
	MethodOverlayDetach = "overlay.detach"
)

// Where `banger system install` puts the helper's files.
const (
	DefaultConfigPath = "/etc/banger/helper.toml"
	DefaultSocketPath = "/run/banger/helper.sock"
	DefaultStatePath  = "/run/banger/helper-state.json"
)

// TapPrefix starts the name of every tap the helper creates; the rest is
// a decimal index the helper picks.
const TapPrefix = "bgtap"

// BridgeInfo describes the bridge named in the helper's config.
type BridgeInfo struct {
	Name    string `json:"name"`
	Address string `json:"address"` // "172.16.0.1/24"
	Exists  bool   `json:"exists"`
	Up      bool   `json:"up"`
}

// EnsureBridgeResult answers bridge.ensure.
type EnsureBridgeResult struct {
	Bridge  BridgeInfo `json:"bridge"`
	Created bool       `json:"created"`
}

// TapCreateResult answers tap.create: the tap the helper made, owned by
// the caller's uid and attached to the bridge.
type TapCreateResult struct {
	Name string `json:"name"`
}

// TapDeleteParams names one of the caller's taps.
type TapDeleteParams struct {
	Name string `json:"name"`
}

// NATEnableParams asks for outbound NAT for one guest IP behind one of
// the caller's taps.
type NATEnableParams struct {
	Tap     string `json:"tap"`
	GuestIP string `json:"guest_ip"`
}

// NATDisableParams names a guest IP whose NAT the caller enabled.
type NATDisableParams struct {
	GuestIP string `json:"guest_ip"`
}

// DMPrefix starts the name of every device-mapper device the helper
// makes; the rest is "<uid>-<vm id>".
const DMPrefix = "banger-"

// DMName is the device-mapper name of uid's overlay for one VM. It is
// known before the device exists, so the daemon records it first.
func DMName(uid uint32, vmID string) string {
	return DMPrefix + strconv.FormatUint(uint64(uid), 10) + "-" + vmID
}

// OverlayAttachParams names the VM whose dm-snapshot overlay to build
// from the two files sent with the request (base, then copy-on-write).
type OverlayAttachParams struct {
	VMID string `json:"vm_id"`
}

// OverlayInfo is one dm-snapshot system overlay the helper built: the
// device the VMM opens, and the loop devices under it.
type OverlayInfo struct {
	DMName   string `json:"dm_name"`
	DMDev    string `json:"dm_dev"`
	BaseLoop string `json:"base_loop"`
	COWLoop  string `json:"cow_loop"`
	UID      uint32 `json:"uid"`
}

// OverlayDetachParams names one of the caller's dm-snapshot overlays.
type OverlayDetachParams struct {
	DMName string `json:"dm_name"`
}

// NATEntry is one guest IP masqueraded out of the host's uplink.
type NATEntry struct {
	GuestIP string `json:"guest_ip"`
	Tap     string `json:"tap"`
	Uplink  string `json:"uplink"`
}

// TapInfo is one of the caller's taps.
type TapInfo struct {
	Name string `json:"name"`
	UID  uint32 `json:"uid"`
}

// StatusResult answers helper.status: who the helper is, its bridge, and
// the caller's own taps and NAT entries (never another user's).
type StatusResult struct {
	Version         string     `json:"version"`
	ProtocolVersion int        `json:"protocol_version"`
	PeerUID         uint32     `json:"peer_uid"`
	Bridge          BridgeInfo `json:"bridge"`
	Taps            []TapInfo  `json:"taps"`
	NAT             []NATEntry `json:"nat"`
	MaxTapsPerUID   int        `json:"max_taps_per_uid"`
	// DMSnapshot says whether this host can build dm-snapshot system
	// overlays (device-mapper in the kernel, dmsetup installed, loop
	// devices); DMSnapshotDetail says why not, or which dmsetup/driver.
	DMSnapshot       bool          `json:"dm_snapshot"`
	DMSnapshotDetail string        `json:"dm_snapshot_detail,omitempty"`
	Overlays         []OverlayInfo `json:"overlays"`
}
