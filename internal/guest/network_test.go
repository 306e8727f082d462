package guest

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"banger/internal/guestapi"
	"banger/internal/testutil/netns"
)

func TestChooseInterface(t *testing.T) {
	lo := linkInfo{Index: 1, Name: "lo", Type: "device", Encap: "loopback"}
	tests := []struct {
		name    string
		links   []linkInfo
		want    string
		wantErr bool
	}{
		{"eth0", []linkInfo{lo, {2, "eth0", "device", "ether"}}, "eth0", false},
		{"eth0 preferred over a lower index", []linkInfo{lo, {2, "enp0s2", "device", "ether"}, {3, "eth0", "device", "ether"}}, "eth0", false},
		{"renamed NIC", []linkInfo{lo, {2, "enp0s2", "device", "ether"}}, "enp0s2", false},
		{"lowest index", []linkInfo{lo, {4, "ens5", "device", "ether"}, {3, "ens4", "device", "ether"}}, "ens4", false},
		{"virtual links skipped", []linkInfo{lo, {2, "docker0", "bridge", "ether"}, {3, "veth1", "veth", "ether"}, {4, "ens3", "device", "ether"}}, "ens3", false},
		{"non-ethernet device skipped", []linkInfo{lo, {2, "sit0", "device", "sit"}, {3, "ens3", "device", "ether"}}, "ens3", false},
		{"only loopback", []linkInfo{lo}, "", true},
		{"none", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseInterface(tt.links)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// The error says what there is, for the console log.
	if _, err := chooseInterface([]linkInfo{lo}); !strings.Contains(err.Error(), "[lo]") || !strings.Contains(err.Error(), "virtio_net") {
		t.Errorf("unhelpful error: %v", err)
	}
}

// TestConfigureNetwork runs the netlink part of setup in a network
// namespace with a veth named eth0 standing in for the VM's virtio NIC.
func TestConfigureNetwork(t *testing.T) {
	ns := netns.New(t)
	ns.Run(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "host0")
	ns.Run(t, "ip", "link", "set", "lo", "down")
	nsh, err := vnetns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	c := guestapi.Config{
		Address:  netip.MustParsePrefix("172.16.0.2/24"),
		Gateway:  netip.MustParseAddr("172.16.0.1"),
		Hostname: "vm1",
	}
	for run := 1; run <= 2; run++ { // the second run is a unit restart
		name, err := configureNetwork(h, c)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if name != "eth0" {
			t.Errorf("configured %s", name)
		}
	}
	for _, name := range []string{"lo", "eth0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s is down", name)
		}
	}
	eth0, _ := h.LinkByName("eth0")
	addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != "172.16.0.2/24" {
		t.Errorf("addresses %v, want just 172.16.0.2/24", addrs)
	}
	out := ns.Run(t, "ip", "-4", "route", "show", "default")
	if strings.Count(out, "default") != 1 || !strings.Contains(out, "via 172.16.0.1 dev eth0") {
		t.Errorf("default route: %q", out)
	}
}

func TestConfigureNetworkWithoutGateway(t *testing.T) {
	ns := netns.New(t)
	ns.Run(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "host0")
	nsh, err := vnetns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := guestapi.Config{Address: netip.MustParsePrefix("10.0.0.5/16"), Hostname: "vm1"}
	if _, err := configureNetwork(h, c); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run(t, "ip", "-4", "route", "show", "default"); strings.TrimSpace(out) != "" {
		t.Errorf("default route without a gateway: %q", out)
	}
	if out := ns.Run(t, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, "10.0.0.5/16") {
		t.Errorf("eth0: %s", out)
	}
}
