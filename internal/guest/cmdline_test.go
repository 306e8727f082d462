package guest

import (
	"path"
	"slices"
	"strings"
	"testing"
)

func TestKernelParams(t *testing.T) {
	tests := []struct {
		name, cmdline string
		want          []string
	}{
		{"empty", "", nil},
		{"plain", "console=ttyS0 reboot=k  panic=1\n", []string{"console=ttyS0", "reboot=k", "panic=1"}},
		{"tabs", "a\tb", []string{"a", "b"}},
		{"quoted value", `root=/dev/vda foo="a b" ro`, []string{"root=/dev/vda", "foo=a b", "ro"}},
		{"quoted param", `"foo=a b" c`, []string{"foo=a b", "c"}},
		{"init args after --", "root=/dev/vdb -- init=/bin/sh single", []string{"root=/dev/vdb"}},
		{"empty quotes", `a="" b`, []string{"a=", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kernelParams(tt.cmdline); !slices.Equal(got, tt.want) {
				t.Errorf("kernelParams(%q) = %q, want %q", tt.cmdline, got, tt.want)
			}
		})
	}
}

func TestParseBootParams(t *testing.T) {
	defaults := bootParams{Root: "/dev/vda", FSType: "ext4", Init: "/sbin/init"}
	tests := []struct {
		name, cmdline string
		want          bootParams
		wantErr       string
	}{
		{"defaults", "console=ttyS0 reboot=k panic=1", defaults, ""},
		{"banger params ignored", "banger.ip=172.16.0.2/24 banger.hostname=a", defaults, ""},
		{"root", "root=/dev/vdb", bootParams{Root: "/dev/vdb", FSType: "ext4", Init: "/sbin/init"}, ""},
		{"ro", "root=/dev/vda ro", bootParams{Root: "/dev/vda", FSType: "ext4", Init: "/sbin/init", ReadOnly: true}, ""},
		{"last of ro rw wins", "ro rw", defaults, ""},
		{"rw then ro", "rw ro", bootParams{Root: "/dev/vda", FSType: "ext4", Init: "/sbin/init", ReadOnly: true}, ""},
		{"ro= is not ro", "ro=1", defaults, ""},
		{"fstype and flags", "rootfstype=xfs rootflags=noatime,nobarrier", bootParams{Root: "/dev/vda", FSType: "xfs", Options: "noatime,nobarrier", Init: "/sbin/init"}, ""},
		{"init", "init=/lib/systemd/systemd", bootParams{Root: "/dev/vda", FSType: "ext4", Init: "/lib/systemd/systemd"}, ""},
		{"init after -- is init's", "-- init=/bin/sh", defaults, ""},
		{"last root wins", "root=/dev/vdb root=/dev/vdc", bootParams{Root: "/dev/vdc", FSType: "ext4", Init: "/sbin/init"}, ""},
		{"uuid", "root=UUID=1234", bootParams{}, "only a /dev path"},
		{"partuuid", "root=PARTUUID=ab-01", bootParams{}, "only a /dev path"},
		{"empty root", "root=", bootParams{}, "only a /dev path"},
		{"unclean root", "root=/dev/../etc/passwd", bootParams{}, "only a /dev path"},
		{"fstype list", "rootfstype=ext4,xfs", bootParams{}, "one filesystem type"},
		{"empty fstype", "rootfstype=", bootParams{}, "one filesystem type"},
		{"relative init", "init=sbin/init", bootParams{}, "not an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBootParams(tt.cmdline)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseBootParams(%q) error = %v, want one containing %q", tt.cmdline, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseBootParams(%q): %v", tt.cmdline, err)
			}
			want := tt.want
			if want.Options == "" && want.FSType == "ext4" {
				want.Options = ext4NoLazyInit // the default for ext4, tested below
			}
			if got != want {
				t.Errorf("parseBootParams(%q) = %+v, want %+v", tt.cmdline, got, want)
			}
		})
	}
}

func TestRootMountOptionsDefault(t *testing.T) {
	for cmdline, want := range map[string]string{
		"root=/dev/vda":                            "noinit_itable",
		"root=/dev/vda rootflags=data=journal":     "data=journal",
		"root=/dev/vda rootfstype=xfs":             "",
		"root=/dev/vda rootfstype=ext4 rootflags=": "noinit_itable",
	} {
		p, err := parseBootParams(cmdline)
		if err != nil || p.Options != want {
			t.Errorf("parseBootParams(%q).Options = %q, %v; want %q", cmdline, p.Options, err, want)
		}
	}
}

// FuzzParseBootParams checks that any command line either fails or
// yields parameters /init can use as they are.
func FuzzParseBootParams(f *testing.F) {
	f.Add("console=ttyS0 root=/dev/vda ro rootfstype=ext4 init=/sbin/init")
	f.Add(`foo="a b" -- x`)
	f.Add(`root="/dev/vd b"`)
	f.Fuzz(func(t *testing.T, cmdline string) {
		p, err := parseBootParams(cmdline)
		if err != nil {
			return
		}
		if !strings.HasPrefix(path.Clean(p.Root), "/dev/") {
			t.Errorf("root %q escapes /dev", p.Root)
		}
		if p.FSType == "" || !strings.HasPrefix(p.Init, "/") {
			t.Errorf("unusable params %+v", p)
		}
	})
}
