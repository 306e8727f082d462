package cli

import (
	"fmt"
	"path/filepath"

	"banger/internal/helperapi"
)

// helperUnit is the systemd system unit that runs banger-helper as root.
//
// Its hardening leaves alone what the helper needs: capabilities
// (CAP_NET_ADMIN for netlink and nftables/iptables, CAP_SYS_ADMIN for
// loop and device-mapper), every address family (AF_NETLINK, AF_UNIX),
// device nodes (/dev/net/tun, /dev/loop*, /dev/mapper/control: so no
// PrivateDevices, DeviceAllow or ProtectClock, which imply a device
// policy), kernel tunables (it may write ip_forward) and module loading
// (iptables may modprobe its extensions).
func helperUnit(prefix string) []byte {
	return fmt.Appendf(nil, `# Installed by 'banger system install'; 'banger system uninstall' removes it.
[Unit]
Description=banger helper: bridge, taps, NAT and dm-snapshot overlays for banger microVMs
After=network.target

[Service]
Type=simple
ExecStart=%s
Restart=on-failure
RestartSec=1
# /run/banger holds the socket and the state file. It outlives a restart,
# so the new helper can reconcile the taps and NAT rules the state lists.
RuntimeDirectory=%s
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ProtectControlGroups=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes

[Install]
WantedBy=multi-user.target
`, helperCommandLine(prefix), filepath.Base(helperRunDir()))
}

// bangerdUserUnit is the systemd user unit for bangerd, which each user
// enables for themselves; banger starts bangerd on demand without it.
func bangerdUserUnit(prefix string) []byte {
	return fmt.Appendf(nil, `# Installed by 'banger system install'; 'banger system uninstall' removes it.
# Enable it as your own user with: systemctl --user enable --now bangerd
# (banger also starts bangerd on demand when it is not running).
[Unit]
Description=bangerd: banger's per-user daemon

[Service]
Type=simple
ExecStart=%s
Restart=on-failure
RestartSec=2

[Install]
WantedBy=default.target
`, filepath.Join(prefix, "bin", "bangerd"))
}

// helperRunDir is the helper's runtime directory, /run/banger.
func helperRunDir() string { return filepath.Dir(helperapi.DefaultSocketPath) }

// helperCommandLine is how the helper is started by hand where systemd
// does not run.
func helperCommandLine(prefix string) string {
	return fmt.Sprintf("%s --config %s --socket %s --state %s", filepath.Join(prefix, "bin", "banger-helper"),
		helperapi.DefaultConfigPath, helperapi.DefaultSocketPath, helperapi.DefaultStatePath)
}
