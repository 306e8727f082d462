package doctor

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/disk"
	"banger/internal/helperapi"
	"banger/internal/helperclient"
	"banger/internal/model"
	"banger/internal/paths"
	"banger/internal/rpc"
	"banger/internal/sshkey"
	"banger/internal/store"
	"banger/internal/vmm/qemu"
)

// doctorCheckNames is the order of daemon.doctor's checks, which is
// part of its contract.
var doctorCheckNames = []string{
	"kvm", "qemu", "firecracker", "vmm", "helper", "bridge", "tap pool",
	"dm-snapshot", "reflink", "overlay",
	"mmdebstrap", "mkfs.ext4", "e2fsck", "resize2fs", "ssh",
	"ssh key", "image", "disk space",
}

// newDoctor is the doctor of a daemon with a store, a data directory,
// the QEMU driver, a tap pool of 2 and a helper at helperSocket.
func newDoctor(t *testing.T, helperSocket string) *Service {
	t.Helper()
	dir := t.TempDir()
	layout := paths.Layout{
		StateDir:   filepath.Join(dir, "state"),
		DataDir:    filepath.Join(dir, "data"),
		ImagesDir:  filepath.Join(dir, "data", "images"),
		VMsDir:     filepath.Join(dir, "data", "vms"),
		DBPath:     filepath.Join(dir, "state", "banger.db"),
		ConfigFile: filepath.Join(dir, "config.toml"),
	}
	if err := layout.EnsureStateDirs(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), layout.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(Deps{
		Config: model.DaemonConfig{
			SSHKeyPath:       filepath.Join(layout.StateDir, "ssh", "id_ed25519"),
			DefaultImageName: "default",
			BridgeName:       "br-fc",
			BridgeIP:         "172.16.0.1",
			CIDR:             "24",
			VMM:              model.VMMAuto,
			HelperSocket:     helperSocket,
		},
		Layout:       layout,
		Store:        st,
		Helper:       helperclient.Client{Socket: helperSocket},
		HelperSocket: helperSocket,
		QEMU:         &qemu.Driver{},
		Drivers:      []string{model.VMMQEMU},
		VMM:          func() api.VMMChoice { return api.VMMChoice{Auto: model.VMMQEMU} },
		TapPool:      func() api.TapPoolStatus { return api.TapPoolStatus{Size: 2} },
	})
}

// fakeBin writes an executable shell script named name into dir that
// prints out.
func fakeBin(t *testing.T, dir, name, out string) {
	t.Helper()
	script := "#!/bin/sh\necho '" + out + "'\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// serveHelperStatus answers helper.status on a socket with st, and
// nothing else, until the test ends.
func serveHelperStatus(t *testing.T, st helperapi.StatusResult) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "helper.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rpc.Server{Methods: map[string]rpc.Handler{
		helperapi.MethodStatus: rpc.Typed(func(context.Context, rpc.NoParams) (helperapi.StatusResult, error) { return st, nil }),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock
}

// callDoctor runs the checks and checks the result's shape.
func callDoctor(t *testing.T, d *Service) (api.DoctorResult, map[string]api.DoctorCheck) {
	t.Helper()
	res := d.Run(context.Background())
	var got []string
	byName := map[string]api.DoctorCheck{}
	for _, c := range res.Checks {
		got = append(got, c.Name)
		byName[c.Name] = c
		if c.Status != api.CheckOK && c.Status != api.CheckWarn && c.Status != api.CheckFail {
			t.Errorf("check %s has status %q", c.Name, c.Status)
		}
		if c.Detail == "" {
			t.Errorf("check %s says nothing", c.Name)
		}
	}
	if !slices.Equal(got, doctorCheckNames) {
		t.Errorf("checks %q,\nwant %q", got, doctorCheckNames)
	}
	return res, byName
}

func wantCheck(t *testing.T, checks map[string]api.DoctorCheck, name, status, detail string) {
	t.Helper()
	c := checks[name]
	if c.Status != status || !strings.Contains(c.Detail, detail) {
		t.Errorf("check %s = %s %q, want %s containing %q", name, c.Status, c.Detail, status, detail)
	}
}

// TestDoctorMissingTools: a daemon whose $PATH has none of the programs
// banger runs, with no helper and no image, fails on QEMU and the helper
// and warns about the rest, naming what to install or run.
func TestDoctorMissingTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	d := newDoctor(t, filepath.Join(t.TempDir(), "helper.sock"))
	res, checks := callDoctor(t, d)

	wantCheck(t, checks, "qemu", api.CheckFail, "qemu-system-x86_64 not found on $PATH")
	wantCheck(t, checks, "firecracker", api.CheckWarn, "firecracker not installed; qemu is used")
	wantCheck(t, checks, "vmm", api.CheckOK, "auto: qemu")
	wantCheck(t, checks, "helper", api.CheckFail, "banger-helper is unavailable at "+d.HelperSocket)
	wantCheck(t, checks, "bridge", api.CheckWarn, "banger-helper is not reachable")
	wantCheck(t, checks, "tap pool", api.CheckWarn, "0/2 ready, waiting for banger-helper")
	wantCheck(t, checks, "mmdebstrap", api.CheckWarn, "not found: 'banger image build' needs it")
	wantCheck(t, checks, "ssh", api.CheckWarn, "not found: 'banger vm ssh' and 'vm exec' run it")
	wantCheck(t, checks, "ssh key", api.CheckOK, "not made yet")
	wantCheck(t, checks, "image", api.CheckWarn, `the default image "default" does not exist yet; build it with 'banger image build'`)
	wantCheck(t, checks, "disk space", api.CheckOK, "GiB free in "+d.Layout.DataDir)

	// Without the helper, the overlay is what the VMs directory allows.
	reflink := disk.ProbeReflink(d.Layout.VMsDir)
	want := disk.ChooseOverlayStrategy(false, reflink)
	if res.Choices.OverlayStrategy != string(want) {
		t.Errorf("overlay strategy %q, want %q", res.Choices.OverlayStrategy, want)
	}
	if reflink {
		wantCheck(t, checks, "overlay", api.CheckOK, "reflink")
	} else {
		wantCheck(t, checks, "overlay", api.CheckWarn, "copy: each VM's system overlay is a full sparse copy")
		wantCheck(t, checks, "reflink", api.CheckWarn, "not supported by")
		wantCheck(t, checks, "dm-snapshot", api.CheckWarn, "unknown: banger-helper is not reachable; copy is used instead")
	}

	if failed := checkNames(res.Failed()); !slices.Contains(failed, "qemu") || !slices.Contains(failed, "helper") {
		t.Errorf("failed checks %q, want qemu and helper among them", failed)
	}
	if res.Choices.VMM != model.VMMAuto || res.Choices.Driver != model.VMMQEMU {
		t.Errorf("choices = %+v, want vmm auto resolved to qemu", res.Choices)
	}
	// The accelerator is the host's, as DetectAccel sees it.
	if host := qemu.DetectAccel(); res.Choices.Accel != string(host.Accel) || res.Choices.AccelReason != host.Reason {
		t.Errorf("accel = %q (%s), want %q (%s)", res.Choices.Accel, res.Choices.AccelReason, host.Accel, host.Reason)
	}
	if kvm := checks["kvm"]; (kvm.Status == api.CheckOK) != (res.Choices.Accel == string(qemu.AccelKVM)) {
		t.Errorf("kvm check %s, but accel %s", kvm.Status, res.Choices.Accel)
	}
}

// TestDoctorReadyHost: every program there, a helper offering
// dm-snapshot, a key and a default image: nothing fails, and the overlay
// is a dm-snapshot.
func TestDoctorReadyHost(t *testing.T) {
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	fakeBin(t, bin, "qemu-system-x86_64", "QEMU emulator version 9.9.9")
	fakeBin(t, bin, "firecracker", "Firecracker v1.99.0")
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4", "e2fsck", "resize2fs", "ssh"} {
		fakeBin(t, bin, tool, "fake "+tool)
	}
	helperSock := serveHelperStatus(t, helperapi.StatusResult{
		Version:          "v9.8.7",
		ProtocolVersion:  1,
		Bridge:           helperapi.BridgeInfo{Name: "br-fc", Address: "172.16.0.1/24", Exists: true, Up: true},
		DMSnapshot:       true,
		DMSnapshotDetail: "dmsetup 1.02.185",
	})
	d := newDoctor(t, helperSock)
	d.TapPool = func() api.TapPoolStatus { return api.TapPoolStatus{} } // the pool is off: nothing to wait for
	if _, err := sshkey.Ensure(d.Config.SSHKeyPath, "bangerd"); err != nil {
		t.Fatal(err)
	}
	imgDir := t.TempDir()
	kernel, rootfs := filepath.Join(imgDir, "vmlinux"), filepath.Join(imgDir, "rootfs.ext4")
	for _, f := range []string{kernel, rootfs} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := model.Now()
	img := model.Image{ID: "0123456789abcdef", Name: "default", Managed: true, KernelPath: kernel, RootfsPath: rootfs, CreatedAt: now, UpdatedAt: now}
	if err := d.Store.(*store.Store).CreateImage(context.Background(), img); err != nil {
		t.Fatal(err)
	}

	res, checks := callDoctor(t, d)
	wantCheck(t, checks, "qemu", api.CheckOK, filepath.Join(bin, "qemu-system-x86_64")+": QEMU emulator version 9.9.9")
	wantCheck(t, checks, "firecracker", api.CheckOK, filepath.Join(bin, "firecracker")+": Firecracker v1.99.0")
	wantCheck(t, checks, "helper", api.CheckOK, "reachable at "+helperSock+" (v9.8.7)")
	wantCheck(t, checks, "bridge", api.CheckOK, "br-fc 172.16.0.1/24 up")
	wantCheck(t, checks, "tap pool", api.CheckOK, "off (tap_pool_size = 0)")
	wantCheck(t, checks, "dm-snapshot", api.CheckOK, "available through banger-helper: dmsetup 1.02.185")
	wantCheck(t, checks, "overlay", api.CheckOK, "dm-snapshot")
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4", "e2fsck", "resize2fs", "ssh"} {
		wantCheck(t, checks, tool, api.CheckOK, filepath.Join(bin, tool))
	}
	wantCheck(t, checks, "ssh key", api.CheckOK, d.Config.SSHKeyPath+" (ssh-ed25519 SHA256:")
	wantCheck(t, checks, "image", api.CheckOK, "default (0123456789ab, built ")
	if failed := res.Failed(); len(failed) != 0 {
		t.Errorf("failed checks: %+v", failed)
	}
	// Reflink or not, a helper with dm-snapshot is the first choice.
	if res.Choices.OverlayStrategy != string(disk.OverlayDMSnapshot) {
		t.Errorf("overlay strategy %q, want dm-snapshot", res.Choices.OverlayStrategy)
	}
	if checks["reflink"].Status != api.CheckOK {
		t.Errorf("reflink %+v: its absence does not matter with dm-snapshot", checks["reflink"])
	}

	// The default image's root file system goes missing: the image check
	// says so, and how to recover.
	os.Remove(rootfs)
	_, checks = callDoctor(t, d)
	wantCheck(t, checks, "image", api.CheckWarn, "its root file system "+rootfs+" is missing")
}

// TestDoctorBridgeMismatch: a helper whose bridge is not the one the
// daemon's config names would strand guests; doctor fails on it.
func TestDoctorBridgeMismatch(t *testing.T) {
	helperSock := serveHelperStatus(t, helperapi.StatusResult{
		Version: "v9.8.7",
		Bridge:  helperapi.BridgeInfo{Name: "br-other", Address: "10.9.0.1/16", Exists: true, Up: true},
	})
	d := newDoctor(t, helperSock)
	res, checks := callDoctor(t, d)
	wantCheck(t, checks, "bridge", api.CheckFail, "banger-helper's bridge is br-other 10.9.0.1/16 but bangerd's config says br-fc 172.16.0.1/24")
	// A helper that does not report dm-snapshot (an older one) is asked
	// to be upgraded.
	wantCheck(t, checks, "dm-snapshot", checks["dm-snapshot"].Status, "banger-helper v9.8.7 does not offer it")
	if !slices.Contains(checkNames(res.Failed()), "bridge") {
		t.Errorf("failed checks %q lack bridge", checkNames(res.Failed()))
	}
}

// TestDoctorBadSSHKey: a key others can read, or one that is not a key,
// fails: every VM create would.
func TestDoctorBadSSHKey(t *testing.T) {
	d := newDoctor(t, filepath.Join(t.TempDir(), "helper.sock"))
	if err := os.MkdirAll(filepath.Dir(d.Config.SSHKeyPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Config.SSHKeyPath, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, checks := callDoctor(t, d)
	wantCheck(t, checks, "ssh key", api.CheckFail, "is readable by others (mode 0644); chmod 600 it")

	if err := os.Chmod(d.Config.SSHKeyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	_, checks = callDoctor(t, d)
	wantCheck(t, checks, "ssh key", api.CheckFail, "ssh key "+d.Config.SSHKeyPath+": ")
}

// TestDoctorConfiguredDriverMissing: vmm set to a driver this bangerd
// does not have fails, naming the config file.
func TestDoctorConfiguredDriverMissing(t *testing.T) {
	d := newDoctor(t, filepath.Join(t.TempDir(), "helper.sock"))
	d.Config.VMM = model.VMMFirecracker
	res, checks := callDoctor(t, d)
	wantCheck(t, checks, "vmm", api.CheckFail, `vmm = "firecracker" in `+d.Layout.ConfigFile+`, but this bangerd has only "qemu"`)
	if res.Choices.Driver != "" || res.Choices.Accel != "" {
		t.Errorf("choices = %+v, want no driver", res.Choices)
	}
}

// TestDoctorHungHelper: a helper that never answers holds doctor no
// longer than daemon.status's short timeout.
func TestDoctorHungHelper(t *testing.T) {
	helperSock := filepath.Join(t.TempDir(), "helper.sock")
	ln, err := net.Listen("unix", helperSock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := newDoctor(t, helperSock)
	start := time.Now()
	_, checks := callDoctor(t, d)
	if took := time.Since(start); took > HelperTimeout+3*time.Second {
		t.Errorf("daemon.doctor took %s with a hung helper", took)
	}
	wantCheck(t, checks, "helper", api.CheckFail, "deadline exceeded")
}
