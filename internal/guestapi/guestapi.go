// Package guestapi is the contract between bangerd and banger-guest, the
// small static program banger puts in every image: the kernel command
// line that carries a VM's network identity to the guest, where the
// program and its unit live in the image, how banger's initramfs is laid
// out, and where the work disk keeps what the daemon seeds for the guest.
// The daemon writes these; the guest reads them; neither imports the other.
package guestapi

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Paths inside an image.
const (
	// GuestBinPath is where banger-guest is installed in the root
	// filesystem.
	GuestBinPath = "/usr/local/sbin/banger-guest"
	// UnitName is the early-boot unit that runs `banger-guest setup`.
	UnitName = "banger-guest.service"
	// UnitPath is where the unit file is written.
	UnitPath = "/etc/systemd/system/" + UnitName
)

// Initramfs layout. /init is banger-guest; the modules it loads, in
// order, are listed one per line (paths relative to /) in ModulesList.
const (
	InitPath    = "/init"
	ModulesList = "/etc/banger/modules.load"
	// RealInit is what /init hands over to once the root disk is mounted.
	RealInit = "/sbin/init"
)

// Work disk: the VM's second drive, mounted on /root. The daemon seeds it
// with the files below; the guest moves the host key into place before
// sshd starts.
const (
	DefaultRootDevice = "/dev/vda"
	DefaultWorkDevice = "/dev/vdb"
	WorkMountPoint    = "/root"
	// HostKeyPath is the VM's own SSH host key on the work disk, generated
	// by the daemon and pinned in its known_hosts.
	HostKeyPath = "/root/.banger/ssh_host_ed25519_key"
	// AuthorizedKeysPath holds the daemon's public key.
	AuthorizedKeysPath = "/root/.ssh/authorized_keys"
)

// Kernel command line keys.
const (
	keyIP       = "banger.ip"       // 172.16.0.2/24
	keyGateway  = "banger.gw"       // 172.16.0.1
	keyDNS      = "banger.dns"      // 1.1.1.1 (optional)
	keyHostname = "banger.hostname" // a DNS label
	keyWork     = "banger.work"     // work disk device, default /dev/vdb
)

// Config is what the daemon tells a guest about itself.
type Config struct {
	Address    netip.Prefix // the guest's address and the bridge's prefix length
	Gateway    netip.Addr   // the bridge address; zero for none
	DNS        netip.Addr   // zero for none
	Hostname   string
	WorkDevice string // "" means DefaultWorkDevice
}

// Validate checks that c can be written on a command line and applied.
func (c Config) Validate() error {
	if !c.Address.IsValid() || !c.Address.Addr().Is4() {
		return fmt.Errorf("guest address %v is not an IPv4 prefix", c.Address)
	}
	if c.Gateway.IsValid() && (!c.Gateway.Is4() || !c.Address.Masked().Contains(c.Gateway)) {
		return fmt.Errorf("gateway %v is not an IPv4 address in %v", c.Gateway, c.Address.Masked())
	}
	if c.DNS.IsValid() && !c.DNS.Is4() {
		return fmt.Errorf("dns %v is not an IPv4 address", c.DNS)
	}
	if err := ValidHostname(c.Hostname); err != nil {
		return err
	}
	if c.WorkDevice != "" && (!strings.HasPrefix(c.WorkDevice, "/dev/") || strings.ContainsAny(c.WorkDevice, " \t\n\"'")) {
		return fmt.Errorf("work device %q is not a /dev path", c.WorkDevice)
	}
	return nil
}

// ValidHostname accepts a DNS label: 1-63 of a-z, 0-9 and '-', not
// starting or ending with '-'.
func ValidHostname(name string) error {
	if name == "" || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("hostname %q is not a DNS label (1-63 of a-z, 0-9, '-'; no '-' at either end)", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("hostname %q is not a DNS label (1-63 of a-z, 0-9, '-'; no '-' at either end)", name)
		}
	}
	return nil
}

// Cmdline renders c as kernel command line parameters.
func (c Config) Cmdline() (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	parts := []string{keyIP + "=" + c.Address.String()}
	if c.Gateway.IsValid() {
		parts = append(parts, keyGateway+"="+c.Gateway.String())
	}
	if c.DNS.IsValid() {
		parts = append(parts, keyDNS+"="+c.DNS.String())
	}
	parts = append(parts, keyHostname+"="+c.Hostname)
	if c.WorkDevice != "" {
		parts = append(parts, keyWork+"="+c.WorkDevice)
	}
	return strings.Join(parts, " "), nil
}

// ErrNotConfigured is returned by ParseCmdline when the command line
// carries no banger parameters at all (a kernel booted by hand).
var ErrNotConfigured = errors.New("no banger parameters on the kernel command line")

// ParseCmdline reads the banger parameters out of a whole kernel command
// line (/proc/cmdline), ignoring everything else on it.
func ParseCmdline(cmdline string) (Config, error) {
	var c Config
	seen := false
	for _, field := range strings.Fields(cmdline) {
		key, value, _ := strings.Cut(field, "=")
		if !strings.HasPrefix(key, "banger.") {
			continue
		}
		seen = true
		var err error
		switch key {
		case keyIP:
			c.Address, err = netip.ParsePrefix(value)
		case keyGateway:
			c.Gateway, err = netip.ParseAddr(value)
		case keyDNS:
			c.DNS, err = netip.ParseAddr(value)
		case keyHostname:
			c.Hostname = value
		case keyWork:
			c.WorkDevice = value
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return Config{}, fmt.Errorf("kernel command line %s=%q: %w", key, value, err)
		}
	}
	if !seen {
		return Config{}, ErrNotConfigured
	}
	return c, c.Validate()
}

// Work returns the work disk device.
func (c Config) Work() string {
	if c.WorkDevice == "" {
		return DefaultWorkDevice
	}
	return c.WorkDevice
}

// The guest agent: banger-guest's long-running channel to the daemon
// (see internal/agentproto).
const (
	// AgentTokenPath holds the per-VM token (hex) the daemon seeds on the
	// work disk; the agent accepts a daemon that presents it. Root only.
	AgentTokenPath = "/root/.banger/agent_token"
	// AgentUnitName runs `banger-guest agent`, restarted whenever it ends.
	AgentUnitName = "banger-agent.service"
	// AgentUnitPath is where the agent's unit file is written.
	AgentUnitPath = "/etc/systemd/system/" + AgentUnitName
)
