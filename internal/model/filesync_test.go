package model

import "testing"

// TestSyncHostPath: a file sync host path is accepted only when it names
// something strictly inside the home, however it is written.
func TestSyncHostPath(t *testing.T) {
	const home = "/home/me"
	const use = "; use ~/PATH or an absolute path inside /home/me"
	for _, tc := range []struct {
		name, raw, home, want, err string
	}{
		{"tilde", "~/.gitconfig", home, "/home/me/.gitconfig", ""},
		{"tilde cleaned", "~//a/../b/", home, "/home/me/b", ""},
		{"absolute inside home", "/home/me/.config/nvim", home, "/home/me/.config/nvim", ""},
		{"absolute inside, unclean", "/home/me/x/../y/", home, "/home/me/y", ""},
		{"home with a trailing slash", "~/x", "/home/me/", "/home/me/x", ""},
		{"home is /", "/etc/x", "/", "/etc/x", ""},

		{"absolute outside home", "/etc/passwd", home, "",
			`host path "/etc/passwd" is outside the home directory /home/me` + use},
		{"absolute escaping home", "/home/me/../bob/.ssh/id_ed25519", home, "",
			`host path "/home/me/../bob/.ssh/id_ed25519" means /home/bob/.ssh/id_ed25519, outside the home directory /home/me` + use},
		{"sibling sharing the prefix", "/home/me2/x", home, "",
			`host path "/home/me2/x" is outside the home directory /home/me` + use},
		{"tilde escaping", "~/../x", home, "",
			`host path "~/../x" means /home/x, outside the home directory /home/me` + use},
		{"tilde escaping deep", "~/a/../../etc", home, "",
			`host path "~/a/../../etc" means /home/etc, outside the home directory /home/me` + use},
		{"relative escaping", "../../etc/passwd", home, "",
			`host path "../../etc/passwd" is relative` + use},
		{"relative", ".bashrc", home, "",
			`host path ".bashrc" is relative` + use},
		{"dot relative", "./x", home, "",
			`host path "./x" is relative` + use},
		{"the home itself, absolute", "/home/me/", home, "",
			`host path "/home/me/" is the whole home directory /home/me; name a file or directory inside it` + use},
		{"the home itself, tilde", "~/", home, "",
			`host path "~/" is the whole home directory /home/me; name a file or directory inside it` + use},
		{"bare tilde", "~", home, "",
			`host path "~" is the whole home directory /home/me; name a file or directory inside it` + use},
		{"tilde dot dot back in", "~/x/..", home, "",
			`host path "~/x/.." is the whole home directory /home/me; name a file or directory inside it` + use},
		{"other user", "~bob/.ssh", home, "",
			`host path "~bob/.ssh" names another user's home: only ~/ (host_home_dir) is expanded, not ~user` + use},
		{"empty", "", home, "", "host path is empty" + use},
		{"NUL", "~/a\x00b", home, "", `host path "~/a\x00b" contains a NUL byte` + use},
		{"no home", "~/x", "", "", `host path "~/x" needs the home directory, and none is configured (host_home_dir)`},
		{"relative home", "/x", "me", "", `host path "/x" needs the home directory, and none is configured (host_home_dir)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SyncHostPath(tc.raw, tc.home)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Errorf("SyncHostPath(%q, %q) = %q, %v; want %q", tc.raw, tc.home, got, err, tc.want)
				}
				return
			}
			if err == nil || err.Error() != tc.err || got != "" {
				t.Errorf("SyncHostPath(%q, %q) = %q, %v\nwant error %s", tc.raw, tc.home, got, err, tc.err)
			}
		})
	}
}
