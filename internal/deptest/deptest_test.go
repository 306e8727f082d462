// Package deptest enforces banger's import rules, the map of the house:
// the CLI is a thin client that never links daemon internals; only the
// root helper links the host-networking code; only bangerd links the
// daemon, which is the one place that wires services together; the
// services never import each other, the transport or the daemon, and
// the layers below them import no service. It also holds the size
// rules: files under 500 lines, functions under 80.
package deptest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// cliAllowed is every banger package the banger binary may link. Adding
// to it is a design decision: the CLI talks to bangerd over RPC and must
// not reach the store, the VMMs or the host directly.
var cliAllowed = []string{
	"banger/cmd/banger",
	"banger/internal/api",
	"banger/internal/buildinfo",
	"banger/internal/cli",
	"banger/internal/errdefs",
	"banger/internal/helperapi",
	"banger/internal/lockfile",
	"banger/internal/model",
	"banger/internal/opid",
	"banger/internal/paths",
	"banger/internal/rpc",
	"banger/internal/shellquote",
}

// restricted maps a package to the only packages allowed to import it,
// directly or through others.
var restricted = map[string][]string{
	// The code that changes host networking and makes block devices runs
	// as root, in the helper.
	"banger/internal/hostnet":  {"banger/internal/helper", "banger/cmd/banger-helper"},
	"banger/internal/hostdisk": {"banger/internal/helper", "banger/cmd/banger-helper"},
	"banger/internal/helper":   {"banger/cmd/banger-helper"},
	// The daemon's wiring point is imported by its main only.
	"banger/internal/daemon": {"banger/cmd/bangerd"},
	// The guest program's code runs inside VMs only.
	"banger/internal/guest": {"banger/cmd/banger-guest"},
	// The helper's client is wired in by the daemon (and the helper's
	// tests); services take a Helper interface instead.
	"banger/internal/helperclient": {"banger/internal/daemon", "banger/cmd/bangerd"},
}

// services are bangerd's services, one package each. A service owns its
// state and its part of the store; what it needs of another service or
// of the helper it takes as a small interface, so a service never
// imports another, nor the daemon that wires them, the RPC transport,
// the CLI, the store or the helper client. Later services (the guest
// agent, stats, networking, MCP) join this list.
var services = []string{
	"banger/internal/vms",
	"banger/internal/images",
	"banger/internal/doctor",
	"banger/internal/workspace",
}

// servicesMayNotImport is what no service may depend on, besides the
// other services.
var servicesMayNotImport = []string{
	"banger/internal/daemon",
	"banger/internal/rpc",
	"banger/internal/cli",
	"banger/internal/store",
	"banger/internal/helperclient",
}

// belowServices are the layers services are built on: none of them may
// depend on a service.
var belowServices = []string{
	"banger/internal/vmm",
	"banger/internal/vmm/qemu",
	"banger/internal/vmm/firecracker",
	"banger/internal/vmm/drivers",
	"banger/internal/disk",
	"banger/internal/hostnet",
	"banger/internal/hostdisk",
	"banger/internal/store",
	"banger/internal/operation",
	"banger/internal/oplog",
	"banger/internal/failpoint",
	"banger/internal/tappool",
	"banger/internal/imagebuild",
	"banger/internal/model",
	"banger/internal/api",
	"banger/internal/gitrepo",
	"banger/internal/guestssh",
	"banger/internal/shellquote",
	"banger/internal/agentproto",
	"banger/internal/agentclient",
}

// goList runs `go list args...` at the module root and returns its
// output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(gobin, append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestCLILinksOnlyClientPackages(t *testing.T) {
	for _, pkg := range goList(t, "-deps", "./cmd/banger") {
		if strings.HasPrefix(pkg, "banger/") && !slices.Contains(cliAllowed, pkg) {
			t.Errorf("cmd/banger links %s; the CLI may only link %v", pkg, cliAllowed)
		}
	}
}

// guestAllowed is every banger package the guest program may link: it
// runs inside every VM, as PID 1 of the initramfs, and stays small.
var guestAllowed = []string{
	"banger/cmd/banger-guest",
	"banger/internal/guest",
	"banger/internal/guestapi",
	"banger/internal/agentproto",
}

func TestGuestLinksOnlyGuestPackages(t *testing.T) {
	for _, pkg := range goList(t, "-deps", "./cmd/banger-guest") {
		if strings.HasPrefix(pkg, "banger/") && !slices.Contains(guestAllowed, pkg) {
			t.Errorf("cmd/banger-guest links %s; the guest program may only link %v", pkg, guestAllowed)
		}
	}
}

func TestRestrictedPackages(t *testing.T) {
	// One line per package: its path, then all its transitive imports.
	for _, line := range goList(t, "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		for target, allowed := range restricted {
			if pkg == target || !slices.Contains(deps, target) || slices.Contains(allowed, pkg) {
				continue
			}
			t.Errorf("%s depends on %s, which only %v may import", pkg, target, allowed)
		}
	}
}

// deps maps each package of the module to its transitive imports.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range goList(t, "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...") {
		fields := strings.Fields(line)
		out[fields[0]] = fields[1:]
	}
	return out
}

func TestServicesStandAlone(t *testing.T) {
	all := deps(t)
	for _, svc := range services {
		d, ok := all[svc]
		if !ok {
			t.Errorf("service %s is not in the module; update the services list", svc)
			continue
		}
		for _, other := range append(slices.Clone(services), servicesMayNotImport...) {
			if other != svc && slices.Contains(d, other) {
				t.Errorf("service %s depends on %s: services never import another service, the daemon, the transport, the CLI, the store or the helper client; take a small interface and let internal/daemon wire it", svc, other)
			}
		}
	}
	for _, low := range belowServices {
		for _, svc := range services {
			if slices.Contains(all[low], svc) {
				t.Errorf("%s depends on the service %s: the layers below the services import none of them", low, svc)
			}
		}
	}
}
