package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"banger/internal/helperapi"
	"banger/internal/rpc"
	"banger/internal/testutil/netns"
)

func requireIptables(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
}

// addLink adds an interface the helper did not make (a veth whose peer,
// name+"p", stays in the same namespace; this kernel has no dummy).
func addLink(t *testing.T, ns *netns.NS, name string) {
	t.Helper()
	ns.Run(t, "ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
	ns.Run(t, "ip", "link", "set", name, "up")
	ns.Run(t, "ip", "link", "set", name+"p", "up")
}

// addUplink gives the namespace a default route out of uplink0, which is
// where the helper masquerades to.
func addUplink(t *testing.T, ns *netns.NS) {
	t.Helper()
	addLink(t, ns, "uplink0")
	ns.Run(t, "ip", "addr", "add", "198.18.0.2/24", "dev", "uplink0")
	ns.Run(t, "ip", "route", "add", "default", "via", "198.18.0.1")
}

func linkExists(ns *netns.NS, name string) bool {
	return ns.Cmd("ip", "link", "show", name).Run() == nil
}

func TestObjectsAppearWithOwnerAndDisappear(t *testing.T) {
	requireIptables(t)
	ns := netns.New(t)
	h := newHelperDir(t, ns, 0, nobody)
	h.start()

	var br helperapi.EnsureBridgeResult
	if err := h.call("op-00000000b001", helperapi.MethodBridgeEnsure, nil, &br); err != nil {
		t.Fatal(err)
	}
	if !br.Created || !br.Bridge.Exists || !br.Bridge.Up || br.Bridge.Address != "172.16.0.1/24" {
		t.Errorf("bridge.ensure = %+v", br)
	}
	if out := ns.Run(t, "ip", "-4", "addr", "show", "br-fc"); !strings.Contains(out, "172.16.0.1/24") {
		t.Errorf("bridge address missing:\n%s", out)
	}
	// Idempotent.
	if err := h.call("op-00000000b002", helperapi.MethodBridgeEnsure, nil, &br); err != nil || br.Created {
		t.Errorf("second bridge.ensure = %+v, %v", br, err)
	}

	// A tap for root and one for nobody, each owned by its caller.
	var mine helperapi.TapCreateResult
	if err := h.call("op-00000000b003", helperapi.MethodTapCreate, nil, &mine); err != nil {
		t.Fatal(err)
	}
	resp := h.callAs(nobody, helperapi.MethodTapCreate, nil)
	if resp.Error != nil {
		t.Fatalf("tap.create as nobody: %v", resp.Error)
	}
	var theirs helperapi.TapCreateResult
	json.Unmarshal(resp.Result, &theirs)
	if mine.Name != "bgtap0" || theirs.Name != "bgtap1" {
		t.Errorf("tap names %q %q, want bgtap0 bgtap1", mine.Name, theirs.Name)
	}
	for name, uid := range map[string]int{mine.Name: 0, theirs.Name: nobody} {
		if owner := strings.TrimSpace(ns.Run(t, "cat", "/sys/class/net/"+name+"/owner")); owner != fmt.Sprint(uid) {
			t.Errorf("%s owner = %s, want %d", name, owner, uid)
		}
		out := ns.Run(t, "ip", "-d", "link", "show", name)
		for _, want := range []string{"master br-fc", "state UP", "tun type tap", "alias banger-helper uid=" + fmt.Sprint(uid)} {
			if !strings.Contains(out, want) && !(want == "state UP" && strings.Contains(out, "<NO-CARRIER,BROADCAST,MULTICAST,UP>")) {
				t.Errorf("%s: %q missing from\n%s", name, want, out)
			}
		}
	}

	// Status shows each caller only its own.
	var st helperapi.StatusResult
	if err := h.call("op-00000000b004", helperapi.MethodStatus, nil, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Taps) != 1 || st.Taps[0].Name != "bgtap0" || st.PeerUID != 0 || !st.Bridge.Up {
		t.Errorf("status for root = %+v", st)
	}
	resp = h.callAs(nobody, helperapi.MethodStatus, nil)
	json.Unmarshal(resp.Result, &st)
	if len(st.Taps) != 1 || st.Taps[0].Name != "bgtap1" || st.PeerUID != nobody {
		t.Errorf("status for nobody = %+v", st)
	}

	// NAT rules appear and disappear exactly.
	addUplink(t, ns)
	var entry helperapi.NATEntry
	if err := h.call("op-00000000b005", helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: "bgtap0", GuestIP: "172.16.0.2"}, &entry); err != nil {
		t.Fatal(err)
	}
	if entry.Uplink != "uplink0" {
		t.Errorf("nat uplink = %q", entry.Uplink)
	}
	rules := ns.Run(t, "iptables-save")
	for _, want := range []string{
		"-A FORWARD -j BANGER-FORWARD",
		"-A POSTROUTING -j BANGER-POSTROUTING",
		`-A BANGER-POSTROUTING -s 172.16.0.2/32 -o uplink0 -m comment --comment "banger:nat:172.16.0.2" -j MASQUERADE`,
		`-A BANGER-FORWARD -s 172.16.0.2/32 -i br-fc -o uplink0 -m comment --comment "banger:nat:172.16.0.2" -j ACCEPT`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("rule %q missing from\n%s", want, rules)
		}
	}
	if got := strings.TrimSpace(ns.Run(t, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward = %s after nat.enable", got)
	}
	// Deleting the tap takes its NAT with it.
	if err := h.call("op-00000000b006", helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "bgtap0"}, nil); err != nil {
		t.Fatal(err)
	}
	if linkExists(ns, "bgtap0") {
		t.Error("bgtap0 still exists after tap.delete")
	}
	if rules := ns.Run(t, "iptables-save"); strings.Contains(rules, "172.16.0.2") {
		t.Errorf("NAT rules survived their tap:\n%s", rules)
	}
	resp = h.callAs(nobody, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "bgtap1"})
	if resp.Error != nil || linkExists(ns, "bgtap1") {
		t.Errorf("nobody deleting its tap: %v", resp.Error)
	}

	// One log line per call, carrying the caller's op id.
	completed := h.logRecords("helper rpc completed")
	found := map[string]bool{}
	for _, rec := range completed {
		if id, _ := rec["op_id"].(string); strings.HasPrefix(id, "op-00000000b0") {
			if found[id] {
				t.Errorf("two lines for %s", id)
			}
			found[id] = true
			if rec["duration_ms"] == nil || rec["method"] == nil || rec["peer_uid"] != float64(0) {
				t.Errorf("log line %v", rec)
			}
		}
	}
	if len(found) != 6 {
		t.Errorf("want one completed line for each of 6 op ids, got %v", found)
	}
}

// TestNATReallyWorks: a stand-in guest on the bridge reaches an upstream
// host in a third namespace only while NAT is on for its IP, and the
// upstream sees the masqueraded address. FORWARD's policy is DROP, as
// Docker leaves it.
func TestNATReallyWorks(t *testing.T) {
	requireIptables(t)
	host, guest, upstream := netns.New(t), netns.New(t), netns.New(t)
	h := newHelperDir(t, host, 0)
	h.start()
	if err := h.call("op-0000000000c1", helperapi.MethodBridgeEnsure, nil, nil); err != nil {
		t.Fatal(err)
	}
	var tap helperapi.TapCreateResult
	if err := h.call("op-0000000000c2", helperapi.MethodTapCreate, nil, &tap); err != nil {
		t.Fatal(err)
	}

	// guest: eth0 172.16.0.2 on the bridge, default route via the bridge.
	netns.Veth(t, guest, "eth0", host, "gport")
	host.Run(t, "ip", "link", "set", "gport", "master", "br-fc")
	guest.Run(t, "ip", "addr", "add", "172.16.0.2/24", "dev", "eth0")
	guest.Run(t, "ip", "route", "add", "default", "via", "172.16.0.1")
	// upstream: 198.18.0.1, with no route back to 172.16.0.0/24.
	netns.Veth(t, upstream, "eth0", host, "uplink0")
	upstream.Run(t, "ip", "addr", "add", "198.18.0.1/24", "dev", "eth0")
	host.Run(t, "ip", "addr", "add", "198.18.0.2/24", "dev", "uplink0")
	host.Run(t, "ip", "route", "add", "default", "via", "198.18.0.1")
	host.Run(t, "iptables", "-P", "FORWARD", "DROP")

	echo := upstream.Cmd(h.exe)
	echo.Env = append(os.Environ(), envEcho+"=198.18.0.1:7777")
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Process.Kill(); echo.Wait() })
	dial := func() string {
		cmd := guest.Cmd(h.exe)
		cmd.Env = append(os.Environ(), envDial+"=198.18.0.1:7777")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dial from guest: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	waitFor(t, "echo server", func() bool { return strings.HasPrefix(dialFromHost(upstream, h.exe), "peer=") })

	if got := dial(); !strings.HasPrefix(got, "error=") {
		t.Fatalf("guest reached upstream without NAT: %s", got)
	}
	if err := h.call("op-0000000000c3", helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: tap.Name, GuestIP: "172.16.0.2"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := dial(); got != "peer=198.18.0.2" {
		t.Fatalf("with NAT: %s, want peer=198.18.0.2 (masqueraded)", got)
	}
	if err := h.call("op-0000000000c4", helperapi.MethodNATDisable, helperapi.NATDisableParams{GuestIP: "172.16.0.2"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := dial(); !strings.HasPrefix(got, "error=") {
		t.Fatalf("guest reached upstream after NAT was disabled: %s", got)
	}
}

// dialFromHost dials the echo server from inside ns.
func dialFromHost(ns *netns.NS, exe string) string {
	cmd := ns.Cmd(exe)
	cmd.Env = append(os.Environ(), envDial+"=198.18.0.1:7777")
	out, _ := cmd.Output()
	return string(out)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestAuthorization(t *testing.T) {
	requireIptables(t)
	ns := netns.New(t)

	t.Run("uid not allowed is refused for every method", func(t *testing.T) {
		h := newHelperDir(t, ns, 0)
		h.start()
		methods := []string{helperapi.MethodStatus, helperapi.MethodBridgeEnsure, helperapi.MethodTapCreate,
			helperapi.MethodTapDelete, helperapi.MethodNATEnable, helperapi.MethodNATDisable, "no.such.method"}
		var reqs []request
		for _, m := range methods {
			reqs = append(reqs, request{m, nil})
		}
		for i, resp := range h.callsAs(nobody, reqs...) {
			if resp.Error == nil || resp.Error.Code != rpc.CodeUnauthorized || resp.Error.OpID == "" {
				t.Errorf("%s as a stranger: %+v", methods[i], resp.Error)
			}
		}
		if linkExists(ns, "br-fc") {
			t.Error("a stranger's bridge.ensure made the bridge")
		}
		h.kill()
	})

	h := newHelperDir(t, ns, 0, nobody)
	h.start()
	var rootTap helperapi.TapCreateResult
	if err := h.call("op-0000000000d1", helperapi.MethodTapCreate, nil, &rootTap); err != nil {
		t.Fatal(err)
	}
	resp := h.callAs(nobody, helperapi.MethodTapCreate, nil)
	var nobodyTap helperapi.TapCreateResult
	json.Unmarshal(resp.Result, &nobodyTap)
	addUplink(t, ns)
	if err := h.call("op-0000000000d2", helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: rootTap.Name, GuestIP: "172.16.0.10"}, nil); err != nil {
		t.Fatal(err)
	}
	// Interfaces the helper did not make.
	addLink(t, ns, "eth0")
	ns.Run(t, "ip", "tuntap", "add", "bgtap7", "mode", "tap")

	tests := []struct {
		name   string
		uid    uint32
		method string
		params any
		code   rpc.Code
	}{
		{"another user's tap", nobody, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: rootTap.Name}, rpc.CodeUnauthorized},
		{"another user's tap, the other way", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: nobodyTap.Name}, rpc.CodeUnauthorized},
		{"NAT behind another user's tap", nobody, helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: rootTap.Name, GuestIP: "172.16.0.11"}, rpc.CodeUnauthorized},
		{"another user's NAT entry", nobody, helperapi.MethodNATDisable, helperapi.NATDisableParams{GuestIP: "172.16.0.10"}, rpc.CodeUnauthorized},
		{"another user's NAT IP from own tap", nobody, helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: nobodyTap.Name, GuestIP: "172.16.0.10"}, rpc.CodeUnauthorized},
		{"lo", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "lo"}, rpc.CodeBadRequest},
		{"eth0", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "eth0"}, rpc.CodeBadRequest},
		{"a tap the helper did not make", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "bgtap7"}, rpc.CodeNotFound},
		{"semicolon", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "bgtap0;reboot"}, rpc.CodeBadRequest},
		{"slash", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "bgtap0/../lo"}, rpc.CodeBadRequest},
		{"space", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: "bgtap 0"}, rpc.CodeBadRequest},
		{"over-long", 0, helperapi.MethodTapDelete, helperapi.TapDeleteParams{Name: strings.Repeat("bgtap", 20)}, rpc.CodeBadRequest},
		{"IP outside the CIDR", 0, helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: rootTap.Name, GuestIP: "10.1.2.3"}, rpc.CodeBadRequest},
		{"the bridge's IP", 0, helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: rootTap.Name, GuestIP: "172.16.0.1"}, rpc.CodeBadRequest},
		{"unknown params field", 0, helperapi.MethodTapDelete, map[string]string{"name": rootTap.Name, "force": "yes"}, rpc.CodeBadRequest},
	}
	// One client process per uid, each sending its requests in order.
	byUID := map[uint32][]int{}
	for i, tt := range tests {
		byUID[tt.uid] = append(byUID[tt.uid], i)
	}
	for uid, idx := range byUID {
		var reqs []request
		for _, i := range idx {
			reqs = append(reqs, request{tests[i].method, tests[i].params})
		}
		for j, resp := range h.callsAs(uid, reqs...) {
			tt := tests[idx[j]]
			if resp.Error == nil || resp.Error.Code != tt.code {
				t.Errorf("%s: %s %v as uid %d: got %+v, want %s", tt.name, tt.method, tt.params, tt.uid, resp.Error, tt.code)
			}
		}
	}
	for _, name := range []string{"lo", "eth0", "bgtap7", rootTap.Name, nobodyTap.Name} {
		if !linkExists(ns, name) {
			t.Errorf("%s disappeared", name)
		}
	}
	if rules := ns.Run(t, "iptables-save"); !strings.Contains(rules, "banger:nat:172.16.0.10") {
		t.Error("root's NAT entry disappeared")
	}

	t.Run("oversized and malformed frames", func(t *testing.T) {
		for _, frame := range []string{strings.Repeat("x", 64<<10), `{"version":1,"method":`, "\x00\xff"} {
			conn, err := net.Dial("unix", h.socket)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "%s\n", frame)
			var resp rpc.Response
			if err := json.NewDecoder(conn).Decode(&resp); err != nil || resp.Error == nil || resp.Error.Code != rpc.CodeBadRequest {
				t.Errorf("frame %.20q: %+v, %v", frame, resp.Error, err)
			}
			conn.Close()
		}
		var st helperapi.StatusResult
		if err := h.call("op-0000000000d3", helperapi.MethodStatus, nil, &st); err != nil || len(st.Taps) != 1 {
			t.Errorf("helper stopped serving: %v", err)
		}
	})
}

func TestCrashRecovery(t *testing.T) {
	requireIptables(t)
	ns := netns.New(t)
	h := newHelperDir(t, ns, 0)
	addUplink(t, ns)

	// Killed between creating a tap and recording it as made.
	h.start("BANGER_HELPER_FAILPOINT=tap-created")
	err := h.call("op-0000000000e1", helperapi.MethodTapCreate, nil, nil)
	if err == nil {
		t.Fatal("tap.create answered despite the failpoint")
	}
	h.waitExit()
	if !linkExists(ns, "bgtap0") {
		t.Fatal("the failpoint fired before the tap existed; the test proves nothing")
	}
	h.start()
	if linkExists(ns, "bgtap0") {
		t.Error("restart left the unrecorded tap behind")
	}
	var st helperapi.StatusResult
	if err := h.call("op-0000000000e2", helperapi.MethodStatus, nil, &st); err != nil || len(st.Taps) != 0 {
		t.Errorf("status after recovery: %+v, %v", st, err)
	}
	h.kill()

	// Killed between adding NAT rules and recording them.
	h.start("BANGER_HELPER_FAILPOINT=nat-added")
	var tap helperapi.TapCreateResult
	if err := h.call("op-0000000000e3", helperapi.MethodTapCreate, nil, &tap); err != nil {
		t.Fatal(err)
	}
	if err := h.call("op-0000000000e4", helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: tap.Name, GuestIP: "172.16.0.9"}, nil); err == nil {
		t.Fatal("nat.enable answered despite the failpoint")
	}
	h.waitExit()
	if !strings.Contains(ns.Run(t, "iptables-save"), "172.16.0.9") {
		t.Fatal("the failpoint fired before the rules existed")
	}
	h.start()
	if rules := ns.Run(t, "iptables-save"); strings.Contains(rules, "172.16.0.9") {
		t.Errorf("restart left unrecorded NAT rules:\n%s", rules)
	}
	if !linkExists(ns, tap.Name) {
		t.Error("restart removed a recorded tap")
	}

	// A tap whose interface vanished while the helper was down is dropped;
	// a helper-marked tap with no record is removed; a foreign look-alike
	// is left alone.
	if err := h.call("op-0000000000e5", helperapi.MethodNATEnable, helperapi.NATEnableParams{Tap: tap.Name, GuestIP: "172.16.0.8"}, nil); err != nil {
		t.Fatal(err)
	}
	h.kill()
	ns.Run(t, "ip", "link", "del", tap.Name)
	ns.Run(t, "ip", "tuntap", "add", "bgtap5", "mode", "tap")
	ns.Run(t, "ip", "link", "set", "bgtap5", "alias", "banger-helper uid=0")
	ns.Run(t, "ip", "tuntap", "add", "bgtap6", "mode", "tap")
	h.start()
	if err := h.call("op-0000000000e6", helperapi.MethodStatus, nil, &st); err != nil || len(st.Taps) != 0 || len(st.NAT) != 0 {
		t.Errorf("status after the tap vanished: %+v, %v", st, err)
	}
	if linkExists(ns, "bgtap5") {
		t.Error("unrecorded helper tap bgtap5 survived reconcile")
	}
	if !linkExists(ns, "bgtap6") {
		t.Error("reconcile deleted bgtap6, which the helper did not make")
	}
	if rules := ns.Run(t, "iptables-save"); strings.Contains(rules, "172.16.0.8") {
		t.Errorf("NAT of a vanished tap survived:\n%s", rules)
	}
	// A name collision with an interface the helper did not make is never
	// reused: the next tap skips bgtap6.
	var next helperapi.TapCreateResult
	for i := 0; i < 7; i++ {
		if err := h.call(fmt.Sprintf("op-0000000000f%d", i), helperapi.MethodTapCreate, nil, &next); err != nil {
			t.Fatal(err)
		}
		if next.Name == "bgtap6" {
			t.Fatal("the helper handed out bgtap6, an interface it did not make")
		}
	}
	// max_taps_per_uid = 8 in the test config.
	err = h.call("op-0000000000f8", helperapi.MethodTapCreate, nil, &next)
	if err == nil {
		err = h.call("op-0000000000f9", helperapi.MethodTapCreate, nil, &next)
	}
	var remote *rpc.ErrorResponse
	if !errors.As(err, &remote) || remote.Code != rpc.CodeConflict || !strings.Contains(remote.Message, "max_taps_per_uid") {
		t.Errorf("tap beyond the cap: %v", err)
	}
}
