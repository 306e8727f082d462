package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/testutil/binaries"
	"banger/internal/testutil/guestboot"
	"banger/internal/testutil/netns"
	"banger/internal/testutil/testimage"
)

// vmEnv is banger as a user runs it, inside a network namespace the test
// made: banger-helper (root) and, started by the CLI, bangerd and its
// VMMs all live there, so guests are reachable and nothing leaves it.
type vmEnv struct {
	*user
	uid       int // the user banger runs as: root, or an unprivileged one
	ns        *netns.NS
	helperDir string
	helper    *exec.Cmd
	image     testimage.Image
	upstream  *netns.NS // where NAT leads
}

// drivers are the VMMs the end-to-end suite runs under: QEMU directly,
// and Firecracker through its test double (test/fcdouble), which bangerd
// finds on PATH and starts as it would start the real one.
var drivers = []string{"qemu", "firecracker"}

// forEachDriver runs fn as a subtest per driver.
func forEachDriver(t *testing.T, fn func(t *testing.T, drv string)) {
	for _, drv := range drivers {
		t.Run(drv, func(t *testing.T) { fn(t, drv) })
	}
}

// newVMEnv starts a helper in a fresh namespace and registers the test
// image as "test", the default image. extraConfig is added to the
// daemon's config: its top-level keys before banger's [vm_defaults], its
// tables after. The VMM is whatever vmm = auto picks.
func newVMEnv(t *testing.T, extraConfig string) *vmEnv {
	t.Helper()
	return newVMEnvAs(t, os.Getuid(), extraConfig)
}

// newDriverEnv is newVMEnv with vmm set to drv in the config.
func newDriverEnv(t *testing.T, drv, extraConfig string) *vmEnv {
	t.Helper()
	return newVMEnvAs(t, os.Getuid(), fmt.Sprintf("vmm = %q\n", drv)+extraConfig)
}

// newVMEnvAs is newVMEnv with banger (CLI, daemon, VMMs) running as uid.
// For an unprivileged uid the user's directories are given to it, and the
// test image is copied where it can read it.
func newVMEnvAs(t testing.TB, uid int, extraConfig string, opts ...envOption) *vmEnv {
	t.Helper()
	topLevel, tables := extraConfig, ""
	if i := strings.Index(extraConfig, "["); i >= 0 {
		topLevel, tables = extraConfig[:i], extraConfig[i:]
	}
	img := testimage.Get(t)
	guestboot.Require(t)
	ns := netns.New(t)
	hdir, err := os.MkdirTemp("", "bgh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hdir) })
	os.Chmod(hdir, 0o755) // as /run/banger is: any user may reach the socket
	config := fmt.Sprintf(`helper_socket = %q
tap_pool_size = 1
default_image_name = "test"
# The bridge's own address: guests get no DNS server outside the namespace.
default_dns = "172.16.0.1"
%s
[vm_defaults]
vcpu_count = 1
memory_mib = 512
work_disk_size = "1G"
system_overlay_size = "4G"
`, filepath.Join(hdir, "helper.sock"), topLevel) + tables
	e := &vmEnv{user: newUser(t, config), uid: uid, ns: ns, helperDir: hdir, image: img}
	// The Firecracker test double is on PATH, as an installed
	// firecracker would be.
	e.env = append(e.env, "PATH="+binaries.FirecrackerDouble(t)+":"+e.bin+":"+os.Getenv("PATH"))
	if uid != os.Getuid() {
		e.giveTo(uid)
	}
	for _, opt := range opts {
		opt(e)
	}
	e.addUplink()
	e.startHelper()
	t.Cleanup(func() {
		e.banger("daemon", "stop")
		e.helper.Process.Kill()
		e.helper.Wait()
	})
	e.must("image", "register", "--name", "test", "--kernel", e.image.Kernel, "--rootfs", e.image.Rootfs, "--initrd", e.image.Initrd)
	return e
}

// addUplink gives the namespace a way out for NAT: a veth to an
// "upstream" namespace of the test's own (198.18.0.1), the default route.
func (e *vmEnv) addUplink() {
	e.t.Helper()
	up := netns.New(e.t)
	netns.Veth(e.t, e.ns, "uplink0", up, "eth0")
	e.ns.Run(e.t, "ip", "addr", "add", "198.18.0.2/24", "dev", "uplink0")
	up.Run(e.t, "ip", "addr", "add", "198.18.0.1/24", "dev", "eth0")
	e.ns.Run(e.t, "ip", "route", "add", "default", "via", "198.18.0.1")
	e.upstream = up
}

func (e *vmEnv) startHelper() {
	e.t.Helper()
	sock := filepath.Join(e.helperDir, "helper.sock")
	os.Remove(sock)
	e.helper = e.ns.Cmd(filepath.Join(binaries.Dir(e.t), "banger-helper"),
		"--allow-uid", fmt.Sprint(e.uid), "--socket", sock, "--state", filepath.Join(e.helperDir, "state.json"))
	logf, _ := os.OpenFile(filepath.Join(e.helperDir, "helper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	e.helper.Stderr = logf
	if err := e.helper.Start(); err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("banger-helper did not start")
}

// giveTo hands the user's directories to uid and copies the test image
// into its home, since the image cache is root's.
func (e *vmEnv) giveTo(uid int) {
	e.t.Helper()
	img := filepath.Join(e.home, "test-image")
	os.MkdirAll(img, 0o755)
	for _, f := range []*string{&e.image.Kernel, &e.image.Rootfs, &e.image.Initrd} {
		dst := filepath.Join(img, filepath.Base(*f))
		if out, err := exec.Command("cp", "--sparse=always", *f, dst).CombinedOutput(); err != nil {
			e.t.Fatalf("copy %s: %v %s", *f, err, out)
		}
		*f = dst
	}
	for _, dir := range []string{e.home, e.run} {
		if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, uid), dir).CombinedOutput(); err != nil {
			e.t.Fatalf("chown %s: %v %s", dir, err, out)
		}
	}
	// The user's home and the temp dirs above it must be traversable.
	for d := filepath.Dir(e.home); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
}

// banger runs the CLI inside the namespace, as the environment's user.
func (e *vmEnv) banger(args ...string) result {
	e.t.Helper()
	cmd := e.ns.Cmd(filepath.Join(e.bin, "banger"), args...)
	if e.uid != os.Getuid() {
		cmd = e.ns.Cmd("setpriv", append([]string{"--reuid", fmt.Sprint(e.uid), "--regid", fmt.Sprint(e.uid), "--clear-groups",
			filepath.Join(e.bin, "banger")}, args...)...)
	}
	return runCLI(e.t, cmd, e.env, args)
}

// direct runs the CLI as a user at a shell would: no namespace wrapper
// (`ip netns exec` costs milliseconds). Only for a running daemon: a CLI
// started outside the namespace would start one outside it.
func (e *vmEnv) direct(args ...string) result {
	e.t.Helper()
	return e.user.banger(args...)
}

func (e *vmEnv) must(args ...string) result {
	e.t.Helper()
	r := e.banger(args...)
	if r.code != 0 {
		e.t.Fatalf("banger %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// exec runs a command in a VM through `banger vm exec` and returns its
// output, failing the test when it fails.
func (e *vmEnv) exec(vm string, command string) string {
	e.t.Helper()
	r := e.banger("vm", "exec", vm, "--", "sh", "-c", command)
	if r.code != 0 {
		e.t.Fatalf("vm exec %s %q: exit %d\n%s%s", vm, command, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func (e *vmEnv) show(vm string) api.VMDetail {
	e.t.Helper()
	var det api.VMDetail
	if err := json.Unmarshal([]byte(e.must("--json", "vm", "show", vm).stdout), &det); err != nil {
		e.t.Fatal(err)
	}
	return det
}

// daemonPID is the running bangerd's pid.
func (e *vmEnv) daemonPID() int {
	e.t.Helper()
	var st api.StatusResult
	if err := json.Unmarshal([]byte(e.must("--json", "daemon", "status").stdout), &st); err != nil {
		e.t.Fatal(err)
	}
	return st.PID
}

// taps lists the tap devices in the namespace.
func (e *vmEnv) taps() []string {
	var out []string
	for _, line := range strings.Split(e.ns.Run(e.t, "ip", "-o", "link", "show", "type", "tun"), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			out = append(out, strings.TrimSuffix(f[1], ":"))
		}
	}
	return out
}

// qemuFor finds QEMU processes whose command line names dir: the VM's
// QEMU under either driver (the Firecracker double runs one too).
func qemuFor(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		cmdline, err := os.ReadFile("/proc/" + en.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte("qemu")) && bytes.Contains(cmdline, []byte(dir+"/")) {
			var pid int
			fmt.Sscan(en.Name(), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

func killPID(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// envOption changes an environment before its daemon starts.
type envOption func(*vmEnv)

// newBenchEnv is a VM environment for benchmarks: banger as the caller's
// user, extra in the config.
func newBenchEnv(b *testing.B, extra string, opts ...envOption) *vmEnv {
	b.Helper()
	return newVMEnvAs(b, os.Getuid(), extra, opts...)
}

// onXFS puts the user's data directory (VMs, images) on an XFS file
// system of its own, a loop mount, with the test image copied there: VM
// overlays are then reflinks of the image. It needs root.
func onXFS(e *vmEnv) {
	t := e.t
	dir := xfsMount(t)
	for _, f := range []*string{&e.image.Rootfs} {
		dst := filepath.Join(dir, "image-"+filepath.Base(*f))
		if out, err := exec.Command("cp", "--sparse=always", *f, dst).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v %s", *f, err, out)
		}
		*f = dst
	}
	e.env = append(e.env, "XDG_DATA_HOME="+dir)
}

// xfsMount mounts a fresh 16 GiB (sparse) XFS file system and returns
// its mount point; cleanup unmounts it. Its path starts with
// banger-bench-xfs, so the benchmark harness can find one an interrupted
// run left.
func xfsMount(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "banger-bench-xfs")
	if err != nil {
		t.Fatal(err)
	}
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, argv := range [][]string{
		{"truncate", "-s", "16G", img},
		{"mkfs.xfs", "-q", "-m", "reflink=1", img},
		{"mount", "-o", "loop", img, mnt},
	} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			t.Skipf("no XFS loop mount here (%s: %v %s)", argv[0], err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("umount", mnt).Run()
		os.RemoveAll(dir)
	})
	return mnt
}
