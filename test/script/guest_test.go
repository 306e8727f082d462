package script

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"banger/internal/testutil/gitfixture"
	"banger/internal/testutil/guestboot"
	"banger/internal/testutil/netns"
	"banger/internal/testutil/testimage"
)

// TestGuestScripts runs testdata/guest/*.txtar: scripts that boot real
// guests, as a user at a shell would. Each gets the test image (built
// once, cached) in $KERNEL, $ROOTFS and $INITRD, a network namespace of
// its own in $NS for the helper, the daemon and the guests (no route
// out), and the helper's socket path in $HELPER_SOCK.
func TestGuestScripts(t *testing.T) {
	netns.Require(t)
	guestboot.Require(t)
	img := testimage.Get(t)
	gitfixture.Isolate(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/guest",
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, "home")
			run, err := os.MkdirTemp("", "bgr")
			if err != nil {
				return err
			}
			hdir, err := os.MkdirTemp("", "bgh")
			if err != nil {
				return err
			}
			ns, err := netns.Create()
			if err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("XDG_RUNTIME_DIR", run)
			env.Setenv("XDG_CACHE_HOME", testimage.CacheDir())
			env.Setenv("NS", ns.Name)
			env.Setenv("HELPER_SOCK", filepath.Join(hdir, "helper.sock"))
			env.Setenv("HELPER_STATE", filepath.Join(hdir, "state.json"))
			env.Setenv("KERNEL", img.Kernel)
			env.Setenv("ROOTFS", img.Rootfs)
			env.Setenv("INITRD", img.Initrd)
			for _, k := range []string{"GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"} {
				env.Setenv(k, os.Getenv(k))
			}
			env.Defer(func() {
				killDaemon(filepath.Join(run, "banger", "bangerd.lock"))
				if err := ns.Destroy(); err != nil {
					t.Log(err)
				}
				os.RemoveAll(run)
				os.RemoveAll(hdir)
			})
			return os.MkdirAll(home, 0o700)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitsock": waitSock,
			"envsubst": envSubst,
		},
	})
}
