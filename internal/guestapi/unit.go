package guestapi

// Unit is the systemd unit the image builder writes to UnitPath
// and enables with a link at UnitEnableLink.
//
// It runs in early boot, with no default dependencies, ordered after
// systemd-remount-fs (so / is writable) and before sysinit.target,
// network-pre.target and ssh.service: sshd starts only once the address,
// the host key and the authorized key are in place. It names no device
// unit: without udev those never appear and systemd would wait 90 s for
// each; banger-guest polls for the work disk's node itself. Ordering only,
// never Requires=, so a failed setup still lets sshd start (and a booted-
// by-hand kernel boots as before). Its output goes to the console too,
// where the daemon reads it.
const Unit = `[Unit]
Description=banger guest setup (network, hostname, work disk, SSH keys)
DefaultDependencies=no
After=systemd-remount-fs.service
Before=ssh.service network-pre.target sysinit.target shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + GuestBinPath + ` setup
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=60

[Install]
WantedBy=sysinit.target
`

// UnitEnableLink is the symlink (to UnitPath) that enables Unit
// as `systemctl enable` would, for a builder that does not run systemctl
// inside the image.
const UnitEnableLink = "/etc/systemd/system/sysinit.target.wants/" + UnitName

// MaskedUnit is a systemd unit the image builder masks (links to
// /dev/null under /etc/systemd/system) and why.
type MaskedUnit struct {
	Name   string
	Reason string
}

// MaskedUnits lists the units a banger image masks so a microVM boots
// fast and never waits for hardware or a network it does not have. A
// microVM has a serial console and virtio disks and NIC, nothing udev
// would set up, and banger configures its network itself. Masking a unit
// the image does not have is harmless, so the list covers packages a
// user's image may add. Nothing sshd or banger-guest.service needs is in
// it: journald, tmpfiles, remount-fs, udevd and logind keep running.
func MaskedUnits() []MaskedUnit {
	return []MaskedUnit{
		// Consoles: access is by SSH; the serial console is the daemon's log.
		{"serial-getty@ttyS0.service", "waits 90 s for dev-ttyS0.device, which never appears without udev; the console is the daemon's log, access is by SSH"},
		{"getty@tty1.service", "no VGA or keyboard on a microVM"},
		{"getty-static.service", "Debian's fallback gettys on tty2-tty6 when logind is missing; no VGA or keyboard"},
		{"console-setup.service", "sets up a VGA console font a microVM does not have"},
		{"keyboard-setup.service", "sets up a keyboard a microVM does not have"},
		{"systemd-firstboot.service", "every VM boots an image for the first time; it must never prompt on the console"},
		// Waiting for things that never come.
		{"systemd-udev-settle.service", "waits up to 3 min for udev to settle; nothing in a microVM needs it"},
		{"systemd-networkd-wait-online.service", "waits up to 2 min for links networkd manages; banger-guest configures eth0"},
		{"ifupdown-wait-online.service", "the same wait for ifupdown"},
		// Rebuilt caches: ConditionNeedsUpdate holds on every VM's first
		// boot, since each starts from the image's untouched /etc and /var.
		{"systemd-hwdb-update.service", "rebuilds the hardware database (seconds under TCG) on each new VM; no udev hardware to match"},
		{"systemd-journal-catalog-update.service", "rebuilds the journal catalog on each new VM"},
		{"ldconfig.service", "reruns ldconfig on each new VM; dpkg ran it when the image was built"},
		// Background work: network traffic and CPU a disposable VM does not want.
		{"apt-daily.timer", "downloads package lists: traffic to Debian mirrors, CPU under TCG"},
		{"apt-daily-upgrade.timer", "unattended upgrades would change a disposable VM behind the user's back"},
		{"man-db.timer", "rebuilds the man index daily; CPU heavy under TCG"},
		{"e2scrub_all.timer", "weekly LVM snapshot scrub; banger's disks are not on LVM"},
		{"e2scrub_reap.service", "looks for stale e2scrub LVM snapshots at every boot; there is no LVM"},
		{"fstrim.timer", "weekly trim of disks that are thrown away"},
		{"systemd-timesyncd.service", "NTP to the Internet; the VM's clock comes from the host through the VMM"},
	}
}

// MaskedUnitNames is MaskedUnits' names, in order.
func MaskedUnitNames() []string {
	units := MaskedUnits()
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.Name
	}
	return names
}
