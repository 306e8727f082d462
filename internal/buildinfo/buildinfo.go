// Package buildinfo says which banger this is: its version string, set at
// link time, and the RPC protocol version the three programs speak.
package buildinfo

import "runtime/debug"

// ProtocolVersion is the version of the RPC envelope and method set
// shared by banger, bangerd and banger-helper. A peer speaking another
// version is refused with bad_version.
const ProtocolVersion = 1

// version is set with -ldflags "-X banger/internal/buildinfo.version=...".
var version string

// Version returns the link-time version, else the module version, else
// "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
