package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"banger/internal/model"
)

// Setters: each takes a decoded TOML value, checks its type and its
// value, and writes the result only when both are valid. Their errors do
// not name the key; the caller wraps them in a keyError that does.

func stringField(dst *string, check func(string) (string, error)) func(any) error {
	return func(v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		if s, err = check(s); err != nil {
			return err
		}
		*dst = s
		return nil
	}
}

func intField(dst *int, lo, hi int64) func(any) error {
	return func(v any) error {
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("expected an integer, got %s", describe(v))
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is out of range (%d to %d)", n, lo, hi)
		}
		*dst = int(n)
		return nil
	}
}

func boolField(dst *bool) func(any) error {
	return func(v any) error {
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("expected true or false, got %s", describe(v))
		}
		*dst = b
		return nil
	}
}

// durationField reads a Go duration string ("90s", "1h30m"). "0" is only
// accepted where zero means "disabled".
func durationField(dst *time.Duration, allowZero bool) func(any) error {
	return func(v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf(`expected a duration string such as "30s" or "2h", got %s`, describe(v))
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf(`%q is not a duration (use a number with a unit: "30s", "15m", "2h")`, s)
		}
		switch {
		case d < 0:
			return fmt.Errorf("%q is negative", s)
		case d == 0 && !allowZero:
			return fmt.Errorf("%q must be greater than zero", s)
		}
		*dst = d
		return nil
	}
}

// sizeField reads a size as model.ParseSize does ("8G", "512M"). A TOML
// integer is a number of MiB, the same as a bare number in a string.
func sizeField(dst *int64) func(any) error {
	return func(v any) error {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case int64:
			s = strconv.FormatInt(v, 10)
		default:
			return fmt.Errorf(`expected a size such as "8G" or "512M", got %s`, describe(v))
		}
		n, err := model.ParseSize(s)
		if err != nil {
			return fmt.Errorf("%q: %w; use %s", s, err, model.SizeSyntax)
		}
		*dst = n
		return nil
	}
}

// cidrField reads the bridge's prefix length: "24", "/24" or the integer
// 24. It is stored without the slash, as model.DefaultCIDR is.
func cidrField(dst *string) func(any) error {
	return func(v any) error {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case int64:
			s = strconv.FormatInt(v, 10)
		default:
			return fmt.Errorf(`expected a prefix length such as "24", got %s`, describe(v))
		}
		n, err := strconv.Atoi(strings.TrimPrefix(s, "/"))
		if err != nil {
			return fmt.Errorf(`%q is not a prefix length (write "24" or "/24")`, s)
		}
		// Below /8 the bridge network would swallow most of the address
		// space; above /30 there is no room for a guest next to the bridge.
		if n < 8 || n > 30 {
			return fmt.Errorf("prefix length %d is out of range (8 to 30)", n)
		}
		*dst = strconv.Itoa(n)
		return nil
	}
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("expected a string, got %s", describe(v))
	}
	return s, nil
}

// describe names a decoded TOML value's type, with the value when it is
// short enough to help.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case time.Time:
		return "a date/time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Value checks. Each returns the value to store.

func parseLogLevel(s string) (string, error) {
	switch l := strings.ToLower(s); l {
	case "debug", "info", "warn", "error":
		return l, nil
	case "warning":
		return "warn", nil
	}
	return "", fmt.Errorf("unsupported log_level %q (use debug, info, warn, or error)", s)
}

func parseVMM(s string) (string, error) {
	switch s {
	case model.VMMAuto, model.VMMFirecracker, model.VMMQEMU:
		return s, nil
	}
	return "", fmt.Errorf("unsupported vmm %q (use %s, %s, or %s)", s, model.VMMAuto, model.VMMFirecracker, model.VMMQEMU)
}

func parseIPv4(s string) (string, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is4() {
		return "", fmt.Errorf("%q is not an IPv4 address", s)
	}
	return addr.String(), nil
}

// checkBridgeHost rejects a bridge address that cannot be a host on its
// own network: the guests route through it, so it must be neither the
// network nor the broadcast address, nor a special-purpose address.
func checkBridgeHost(ip, cidr string) error {
	prefix, err := netip.ParsePrefix(ip + "/" + cidr)
	if err != nil {
		return fmt.Errorf("%q with prefix /%s: %w", ip, cidr, err)
	}
	addr := prefix.Addr()
	if addr.IsUnspecified() || addr.IsLoopback() || addr.IsMulticast() || addr.IsLinkLocalUnicast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("%q is not usable as a bridge address", ip)
	}
	network := prefix.Masked()
	if addr == network.Addr() {
		return fmt.Errorf("%q is the network address of %s; use a host address such as %s", ip, network, network.Addr().Next())
	}
	if addr == broadcast(network) {
		return fmt.Errorf("%q is the broadcast address of %s; use a host address such as %s", ip, network, network.Addr().Next())
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		a[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(a)
}

// parseInterfaceName applies the kernel's rules for a network interface
// name (dev_valid_name): at most IFNAMSIZ-1 bytes, not "." or "..", and
// no '/', ':' or whitespace. '%' is refused too, because the kernel reads
// it as a template ("br%d") when creating a link.
func parseInterfaceName(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("must not be empty")
	case len(s) > 15:
		return "", fmt.Errorf("%q is %d bytes; a Linux interface name has at most 15", s, len(s))
	case s == "." || s == "..":
		return "", fmt.Errorf("%q is not a valid interface name", s)
	}
	for _, r := range s {
		if r == '/' || r == ':' || r == '%' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", fmt.Errorf("%q is not a valid interface name: it contains %q", s, r)
		}
	}
	return s, nil
}

// parseDNSLabel requires an image name usable as one DNS label, since VM
// and image names end up in guest hostnames.
func parseDNSLabel(s string) (string, error) {
	if s == "" || len(s) > 63 {
		return "", fmt.Errorf("%q is not a DNS label: it must be 1 to 63 characters", s)
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "", fmt.Errorf("%q is not a DNS label: it must not start or end with '-'", s)
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", fmt.Errorf("%q is not a DNS label: use lowercase letters, digits and '-'", s)
		}
	}
	return s, nil
}

// parseAbsPath expands a leading "~/" against the user's home and
// requires the result to be absolute: the daemon's working directory is
// no place to resolve a path against.
func (p *parser) parseAbsPath(s string) (string, error) {
	if err := checkPathString(s); err != nil {
		return "", err
	}
	expanded := ExpandHome(s, p.home)
	if !filepath.IsAbs(expanded) {
		if strings.HasPrefix(expanded, "~") {
			return "", fmt.Errorf("%q: cannot expand ~ (home directory unknown); use an absolute path", s)
		}
		return "", fmt.Errorf("%q is not an absolute path (start it with / or ~/)", s)
	}
	return filepath.Clean(expanded), nil
}

// maxSocketPath is the longest path a unix socket can be bound or
// dialled at: sun_path holds 108 bytes, the last one a NUL.
const maxSocketPath = 107

// parseSocketPath is parseAbsPath for a unix socket, whose path the
// kernel limits to maxSocketPath bytes.
func (p *parser) parseSocketPath(s string) (string, error) {
	path, err := p.parseAbsPath(s)
	if err != nil {
		return "", err
	}
	if len(path) > maxSocketPath {
		return "", fmt.Errorf("%q is %d bytes; a unix socket path has at most %d", path, len(path), maxSocketPath)
	}
	return path, nil
}

// parseCommand accepts a bare command name, looked up in $PATH when the
// daemon runs it, or an absolute path (after "~/" expansion). A relative
// path with a slash would depend on the daemon's working directory.
func (p *parser) parseCommand(s string) (string, error) {
	if err := checkPathString(s); err != nil {
		return "", err
	}
	if !strings.ContainsRune(s, '/') && s != "~" {
		return s, nil
	}
	return p.parseAbsPath(s)
}

func checkPathString(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%q contains a NUL byte", s)
	}
	return nil
}

// BridgePrefix is the bridge's address with its prefix length, as
// bridge_ip and cidr say: the network guests get addresses from.
func BridgePrefix(cfg model.DaemonConfig) (netip.Prefix, error) {
	addr, err := netip.ParseAddr(cfg.BridgeIP)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bridge_ip %q: %w", cfg.BridgeIP, err)
	}
	bits, err := strconv.Atoi(strings.TrimPrefix(cfg.CIDR, "/"))
	if err != nil || bits < 0 || bits > 32 {
		return netip.Prefix{}, fmt.Errorf("cidr %q is not a prefix length", cfg.CIDR)
	}
	return netip.PrefixFrom(addr, bits), nil
}
