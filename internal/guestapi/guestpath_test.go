package guestapi

import (
	"path"
	"strings"
	"testing"
)

func TestGuestPath(t *testing.T) {
	const use = "; use ~/PATH or /root/PATH"
	for _, tc := range []struct {
		name, raw string
		want      string // the clean path, or "" for an error
		err       string // the error, or "" when the path is accepted
	}{
		// Accepted: ~/ and /root/ spellings, cleaned lexically.
		{"tilde", "~/.gitconfig", "/root/.gitconfig", ""},
		{"absolute", "/root/.config/nvim", "/root/.config/nvim", ""},
		{"trailing slash dropped", "~/d/", "/root/d", ""},
		{"absolute trailing slash", "/root/x/./y/", "/root/x/y", ""},
		{"repeated slashes", "/root//x", "/root/x", ""},
		{"tilde repeated slashes", "~//z", "/root/z", ""},
		{"dot-dot inside home", "~/a/b/../c", "/root/a/c", ""},
		{"dot-dot back into home", "/root/../root/x", "/root/x", ""},
		{"dotfile named like dot-dot", "~/..x", "/root/..x", ""},

		// Empty and NUL.
		{"empty", "", "", "guest path is empty" + use},
		{"NUL", "~/a\x00b", "", `guest path "~/a\x00b" contains a NUL byte` + use},

		// ~ other than ~ and ~/.
		{"other user", "~bob/x", "", `guest path "~bob/x" names another user's home: only ~ (/root, root's home) is expanded, not ~user` + use},
		{"tilde dot", "~.", "", `guest path "~." names another user's home: only ~ (/root, root's home) is expanded, not ~user` + use},

		// Relative.
		{"relative", ".bashrc", "", `guest path ".bashrc" is relative` + use},
		{"dot relative", "./x", "", `guest path "./x" is relative` + use},
		{"tilde not first", "a/~/x", "", `guest path "a/~/x" is relative` + use},

		// The home itself, however it is spelt.
		{"bare tilde", "~", "", `guest path "~" is /root itself (root's home); name a file or directory inside it` + use},
		{"tilde slash", "~/", "", `guest path "~/" is /root itself (root's home); name a file or directory inside it` + use},
		{"root", "/root", "", `guest path "/root" is /root itself (root's home); name a file or directory inside it` + use},
		{"root slash", "/root/", "", `guest path "/root/" is /root itself (root's home); name a file or directory inside it` + use},
		{"back to home", "~/x/..", "", `guest path "~/x/.." is /root itself (root's home); name a file or directory inside it` + use},

		// Outside the home.
		{"outside", "/etc/passwd", "", `guest path "/etc/passwd" is outside /root, the only place file sync writes` + use},
		{"slash", "/", "", `guest path "/" is outside /root, the only place file sync writes` + use},
		{"tilde escapes", "~/../etc/shadow", "", `guest path "~/../etc/shadow" is outside /root, the only place file sync writes` + use},
		{"root escapes", "/root/../etc", "", `guest path "/root/../etc" is outside /root, the only place file sync writes` + use},
		{"deep escape", "/root/a/../../..", "", `guest path "/root/a/../../.." is outside /root, the only place file sync writes` + use},
		{"root prefix", "/rootfs/x", "", `guest path "/rootfs/x" is outside /root, the only place file sync writes` + use},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GuestPath(tc.raw)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Errorf("GuestPath(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.err || got != "" {
				t.Errorf("GuestPath(%q) = %q, %v\nwant error %s", tc.raw, got, err, tc.err)
			}
		})
	}
}

// FuzzGuestPath: what GuestPath accepts is a clean path strictly inside
// the home, which it accepts again unchanged.
func FuzzGuestPath(f *testing.F) {
	for _, s := range []string{"~/a", "/root/a/../b/", "~", "~/../etc", "/rootfs", "~bob", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		clean, err := GuestPath(raw)
		if err != nil {
			if clean != "" {
				t.Errorf("GuestPath(%q) = %q with error %v", raw, clean, err)
			}
			return
		}
		if !strings.HasPrefix(clean, GuestHome+"/") || path.Clean(clean) != clean {
			t.Errorf("GuestPath(%q) = %q: not clean inside %s", raw, clean, GuestHome)
		}
		if again, err := GuestPath(clean); err != nil || again != clean {
			t.Errorf("GuestPath(%q) = %q, %v; want it unchanged", clean, again, err)
		}
	})
}
