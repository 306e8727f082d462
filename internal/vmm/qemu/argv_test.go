package qemu

import (
	"slices"
	"strings"
	"testing"

	"banger/internal/vmm"
)

func testSpec() vmm.Spec {
	return vmm.Spec{
		VMID:       "vm1",
		Name:       "dev",
		Dir:        "/vms/vm1",
		KernelPath: "/images/test/vmlinux",
		InitrdPath: "/images/test/initrd.cpio",
		Cmdline:    "console=ttyS0 reboot=k panic=1 root=/dev/vda rw banger.ip=172.16.0.2/24",
		VCPUs:      2,
		MemoryMiB:  512,
		RootDisk:   "/vms/vm1/root.ext4",
		WorkDisk:   "/vms/vm1/work.ext4",
		Tap:        "tap-vm1",
		MAC:        "52:54:ac:10:00:02",
		VSockCID:   7,
		ConsoleLog: "/vms/vm1/console.log",
	}
}

func TestArgs(t *testing.T) {
	tail := []string{
		"-drive", "id=root,file=/vms/vm1/root.ext4,format=raw,if=none",
		"-device", "virtio-blk-device,drive=root",
		"-drive", "id=work,file=/vms/vm1/work.ext4,format=raw,if=none",
		"-device", "virtio-blk-device,drive=work",
		"-netdev", "tap,id=net0,ifname=tap-vm1,script=no,downscript=no",
		"-device", "virtio-net-device,netdev=net0,mac=52:54:ac:10:00:02",
	}
	console := []string{
		"-chardev", "file,id=console,path=/vms/vm1/console.log,append=on",
		"-serial", "chardev:console",
		"-chardev", "socket,id=qmp,fd=3,server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
	}
	concat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	tests := []struct {
		name string
		m    machine
		want []string
	}{
		{
			name: "tcg",
			m:    machine{accel: AccelTCG, tscKHz: 2096023},
			want: concat([]string{
				"-M", "microvm,acpi=on",
				"-accel", "tcg", "-cpu", "max",
				"-m", "512M", "-smp", "2",
				"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
				"-kernel", "/images/test/vmlinux",
				"-initrd", "/images/test/initrd.cpio",
				"-append", "console=ttyS0 reboot=k panic=1 root=/dev/vda rw banger.ip=172.16.0.2/24 tsc_early_khz=2096023 tsc=reliable",
			}, tail, console),
		},
		{
			name: "kvm with vsock",
			m:    machine{accel: AccelKVM, tscKHz: 2096023, vsock: true},
			want: concat([]string{
				"-M", "microvm,acpi=on",
				"-accel", "kvm", "-cpu", "host",
				"-m", "512M", "-smp", "2",
				"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
				"-kernel", "/images/test/vmlinux",
				"-initrd", "/images/test/initrd.cpio",
				"-append", "console=ttyS0 reboot=k panic=1 root=/dev/vda rw banger.ip=172.16.0.2/24",
			}, tail, []string{"-device", "vhost-vsock-device,id=vsock0,guest-cid=7"}, console),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := qemuArgs(testSpec(), tt.m)
			if !slices.Equal(got, tt.want) {
				t.Errorf("argv:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestArgsOptional(t *testing.T) {
	spec := testSpec()
	spec.InitrdPath, spec.WorkDisk, spec.Tap, spec.MAC = "", "", "", ""
	got := strings.Join(qemuArgs(spec, machine{accel: AccelTCG, vsock: true}), " ")
	for _, absent := range []string{"-initrd", "id=work", "-netdev", "virtio-net-device"} {
		if strings.Contains(got, absent) {
			t.Errorf("argv has %s though the spec has none:\n%s", absent, got)
		}
	}
	// vsock is asked for (CID 7) and the host has it.
	if !strings.Contains(got, "vhost-vsock-device,id=vsock0,guest-cid=7") {
		t.Errorf("no vsock device:\n%s", got)
	}
	spec.VSockCID = 0
	if got := strings.Join(qemuArgs(spec, machine{accel: AccelTCG, vsock: true}), " "); strings.Contains(got, "vsock") {
		t.Errorf("vsock device without a CID:\n%s", got)
	}
}

func TestArgsEscapeCommas(t *testing.T) {
	spec := testSpec()
	spec.RootDisk = "/vms/a,b/root.ext4"
	spec.ConsoleLog = "/vms/a,b/console.log"
	got := qemuArgs(spec, machine{accel: AccelTCG})
	for _, want := range []string{
		"id=root,file=/vms/a,,b/root.ext4,format=raw,if=none",
		"file,id=console,path=/vms/a,,b/console.log,append=on",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("argv lacks %q:\n%q", want, got)
		}
	}
}

func TestCmdline(t *testing.T) {
	tests := []struct {
		name, base string
		m          machine
		want       string
	}{
		{"tcg", "console=ttyS0 root=/dev/vda", machine{accel: AccelTCG, tscKHz: 3000000},
			"console=ttyS0 root=/dev/vda tsc_early_khz=3000000 tsc=reliable"},
		{"tcg, host frequency unknown", "console=ttyS0", machine{accel: AccelTCG},
			"console=ttyS0 tsc=reliable"},
		{"tcg, the spec's own values win", "tsc_early_khz=1000 console=ttyS0 tsc=unstable", machine{accel: AccelTCG, tscKHz: 3000000},
			"tsc_early_khz=1000 console=ttyS0 tsc=unstable"},
		{"tcg, empty base", "", machine{accel: AccelTCG, tscKHz: 5},
			"tsc_early_khz=5 tsc=reliable"},
		{"kvm adds nothing", "console=ttyS0", machine{accel: AccelKVM, tscKHz: 3000000},
			"console=ttyS0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cmdline(tt.base, tt.m); got != tt.want {
				t.Errorf("cmdline(%q) = %q, want %q", tt.base, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*vmm.Spec)
		ok     bool
	}{
		{"complete", func(*vmm.Spec) {}, true},
		{"no nic", func(s *vmm.Spec) { s.Tap, s.MAC = "", "" }, true},
		{"tap without mac", func(s *vmm.Spec) { s.MAC = "" }, false},
		{"mac with options", func(s *vmm.Spec) { s.MAC = "52:54:00:00:00:01,x=y" }, false},
		{"reserved cid", func(s *vmm.Spec) { s.VSockCID = 2 }, false},
		{"no kernel", func(s *vmm.Spec) { s.KernelPath = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec()
			tt.change(&s)
			if err := s.Validate(); (err == nil) != tt.ok {
				t.Errorf("validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
