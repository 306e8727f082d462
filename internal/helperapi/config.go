package helperapi

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"banger/internal/model"
)

// Config is banger-helper's own configuration, /etc/banger/helper.toml.
// Only root can write it: it is the helper's whole notion of who may
// call it and which bridge it manages.
type Config struct {
	// AllowedUIDs may call the helper. Root is not implied.
	AllowedUIDs []uint32 `toml:"allowed_uids"`
	// The bridge the helper creates and attaches taps to.
	BridgeName string `toml:"bridge_name"`
	BridgeIP   string `toml:"bridge_ip"`
	CIDR       string `toml:"cidr"`
	// MaxTapsPerUID bounds how many taps one user can hold.
	MaxTapsPerUID int `toml:"max_taps_per_uid"`
}

// DefaultConfig is the config with banger's default bridge and no users.
func DefaultConfig() Config {
	return Config{
		BridgeName:    model.DefaultBridgeName,
		BridgeIP:      model.DefaultBridgeIP,
		CIDR:          model.DefaultCIDR,
		MaxTapsPerUID: 64,
	}
}

// LoadConfig reads and validates a helper config file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("helper config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig validates a helper config over DefaultConfig. Unknown keys
// are errors; every error names the source and the key.
func ParseConfig(data []byte, source string) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("helper config %s: %w", source, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("helper config %s: unknown key %s", source, strings.Join(keys, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("helper config %s: %w", source, err)
	}
	return cfg, nil
}

// Validate checks the bridge settings and limits.
func (c Config) Validate() error {
	if err := ValidInterfaceName(c.BridgeName); err != nil {
		return fmt.Errorf("bridge_name: %w", err)
	}
	if strings.HasPrefix(c.BridgeName, TapPrefix) {
		return fmt.Errorf("bridge_name: %q starts with %q, which is reserved for taps", c.BridgeName, TapPrefix)
	}
	if _, err := c.BridgePrefix(); err != nil {
		return err
	}
	if c.MaxTapsPerUID < 1 || c.MaxTapsPerUID > 4096 {
		return fmt.Errorf("max_taps_per_uid: %d is outside 1..4096", c.MaxTapsPerUID)
	}
	return nil
}

// BridgePrefix is the bridge's address with its prefix length, e.g.
// 172.16.0.1/24.
func (c Config) BridgePrefix() (netip.Prefix, error) {
	addr, err := netip.ParseAddr(c.BridgeIP)
	if err != nil || !addr.Is4() {
		return netip.Prefix{}, fmt.Errorf("bridge_ip: %q is not an IPv4 address", c.BridgeIP)
	}
	bits, err := strconv.Atoi(strings.TrimPrefix(c.CIDR, "/"))
	if err != nil || bits < 8 || bits > 30 {
		return netip.Prefix{}, fmt.Errorf("cidr: %q is not a prefix length between 8 and 30", c.CIDR)
	}
	p := netip.PrefixFrom(addr, bits)
	network := p.Masked().Addr()
	if addr == network || addr == Broadcast(p) {
		return netip.Prefix{}, fmt.Errorf("bridge_ip: %s is the network or broadcast address of %s", addr, p.Masked())
	}
	return p, nil
}

// Broadcast is the last address of p's network.
func Broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ValidInterfaceName checks a Linux interface name: 1-15 bytes of
// letters, digits, '-', '_' and '.'; not "." or "..".
func ValidInterfaceName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("interface name %q must be 1-15 characters", name)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("interface name %q is not allowed", name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("interface name %q has a character other than letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// Marshal writes the config as TOML, as `banger system install` stores it.
func (c Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# banger-helper configuration, written by `banger system install`.\n")
	buf.WriteString("# Only the uids listed here may use the helper.\n")
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
