package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost is a /dev/kvm, /proc and /sys to detect from.
type fakeHost struct {
	devKVM  bool   // /dev/kvm exists (as a file the test can open)
	flags   string // the flags line of /proc/cpuinfo; "-" for no cpuinfo
	modules []string
}

func (f fakeHost) build(t *testing.T) hostFiles {
	dir := t.TempDir()
	h := hostFiles{DevKVM: filepath.Join(dir, "dev/kvm"), Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys")}
	for _, d := range []string{filepath.Dir(h.DevKVM), h.Proc, filepath.Join(h.Sys, "module")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if f.devKVM {
		if err := os.WriteFile(h.DevKVM, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if f.flags != "-" {
		cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu MHz\t\t: 2096.023\nflags\t\t: " + f.flags + "\n\n"
		if err := os.WriteFile(filepath.Join(h.Proc, "cpuinfo"), []byte(cpuinfo), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range append([]string{"kvm"}, f.modules...) {
		if err := os.MkdirAll(filepath.Join(h.Sys, "module", m, "parameters"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func TestDetectAccel(t *testing.T) {
	tests := []struct {
		name   string
		host   fakeHost
		want   Accel
		reason []string // substrings of the reason
	}{
		{"intel with kvm_intel", fakeHost{devKVM: true, flags: "fpu vme vmx sse", modules: []string{"kvm_intel"}},
			AccelKVM, []string{"vmx", "kvm_intel"}},
		{"amd with kvm_amd", fakeHost{devKVM: true, flags: "fpu svm sse", modules: []string{"kvm_amd"}},
			AccelKVM, []string{"svm", "kvm_amd"}},
		// This project's machines: no usable /dev/kvm, no vmx/svm, and
		// only the paravirtual kvm_pvm.
		{"kvm_pvm only", fakeHost{flags: "fpu sse vmmcall hypervisor", modules: []string{"kvm_pvm"}},
			AccelTCG, []string{"cannot open", "neither vmx nor svm", "only kvm_pvm", "cannot run an ordinary guest"}},
		{"kvm_pvm even with /dev/kvm and svm", fakeHost{devKVM: true, flags: "svm", modules: []string{"kvm_pvm"}},
			AccelTCG, []string{"neither kvm_intel nor kvm_amd is loaded (only kvm_pvm"}},
		{"no /dev/kvm", fakeHost{flags: "vmx", modules: []string{"kvm_intel"}},
			AccelTCG, []string{"cannot open", "no such file or directory"}},
		{"no cpu flag", fakeHost{devKVM: true, flags: "fpu vmxx svm2", modules: []string{"kvm_intel"}},
			AccelTCG, []string{"neither vmx nor svm"}},
		{"no cpuinfo", fakeHost{devKVM: true, flags: "-", modules: []string{"kvm_amd"}},
			AccelTCG, []string{"cannot read the CPU flags"}},
		{"no kvm module", fakeHost{devKVM: true, flags: "vmx"},
			AccelTCG, []string{"neither kvm_intel nor kvm_amd is loaded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := detectAccel(tt.host.build(t))
			if got.Accel != tt.want {
				t.Errorf("accel = %s (%s), want %s", got.Accel, got.Reason, tt.want)
			}
			for _, r := range tt.reason {
				if !strings.Contains(got.Reason, r) {
					t.Errorf("reason %q does not say %q", got.Reason, r)
				}
			}
		})
	}
}

func TestDetectAccelHere(t *testing.T) {
	// Whatever the host, the decision is explained.
	d := DetectAccel()
	if (d.Accel != AccelKVM && d.Accel != AccelTCG) || d.Reason == "" {
		t.Fatalf("DetectAccel = %+v", d)
	}
	t.Logf("this host: %s", d.Reason)
}

func TestResolveAccel(t *testing.T) {
	for _, a := range []Accel{AccelKVM, AccelTCG} {
		d, err := (&Driver{Accel: a}).ResolveAccel()
		if err != nil || d.Accel != a {
			t.Errorf("forced %s: %+v, %v", a, d, err)
		}
	}
	if _, err := (&Driver{Accel: "hvf"}).ResolveAccel(); err == nil {
		t.Error("unknown accelerator accepted")
	}
}

func TestHostTSCkHz(t *testing.T) {
	h := fakeHost{flags: "fpu"}.build(t)
	if got := hostTSCkHz(h.Proc); got != 2096023 {
		t.Errorf("hostTSCkHz = %d, want 2096023", got)
	}
	if got := hostTSCkHz(t.TempDir()); got != 0 {
		t.Errorf("hostTSCkHz without cpuinfo = %d, want 0", got)
	}
}
