package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/guestapi"
)

// newRootDir is where /init mounts the root disk before switching to it.
const newRootDir = "/newroot"

// rebootDelay is how long a failed /init leaves its message on the
// console before rebooting. With `reboot=k panic=1` (and QEMU's
// -no-reboot) the VMM then sees the VM stop rather than hang.
const rebootDelay = 3 * time.Second

// kernelFilesystems are the API filesystems /init mounts for itself and
// hands over to the real system, in mount order.
var kernelFilesystems = []struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}{
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
}

// runInit is the initramfs role; args are the arguments the kernel gave
// /init, handed on to the real init. It never returns: it execs the real
// init or, failing that, reboots, because PID 1 exiting panics the kernel
// with a message far less clear than ours.
func runInit(args []string) {
	log := newConsoleLog(os.Stderr)
	defer func() {
		if r := recover(); r != nil {
			fatal(log, fmt.Errorf("panic: %v", r))
		}
	}()
	fatal(log, bootRoot(log, args))
}

// bootRoot does /init's work and returns only on failure.
func bootRoot(log *consoleLog, args []string) error {
	start := time.Now()
	if err := mountKernelFilesystems(); err != nil {
		return err
	}
	attachConsole()
	log.printf("mounted /dev, /proc, /sys")

	t := time.Now()
	loaded, listed := loadModules(log, guestapi.ModulesList)
	log.printf("loaded %d of %d modules in %s", loaded, listed, ms(t))

	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return fmt.Errorf("read kernel command line: %w", err)
	}
	p, err := parseBootParams(string(cmdline))
	if err != nil {
		return err
	}
	waited, err := waitForDevice(p.Root, deviceWait, isBlockDevice)
	if err != nil {
		return fmt.Errorf("root disk: %w (are virtio_mmio/virtio_pci and virtio_blk loaded?)", err)
	}
	t = time.Now()
	if err := mountRoot(p); err != nil {
		return err
	}
	mode := "rw"
	if p.ReadOnly {
		mode = "ro"
	}
	log.printf("mounted %s on %s (%s, %s; waited %s for it, mount %s)", p.Root, newRootDir, p.FSType, mode, waited.Round(time.Millisecond), ms(t))

	// Check before the initramfs is deleted, while a failure can still be
	// reported from a working system.
	if _, err := os.Lstat(filepath.Join(newRootDir, p.Init)); err != nil {
		return fmt.Errorf("init %s on %s: %w", p.Init, p.Root, err)
	}
	moveKernelFilesystems(log)
	if err := switchRoot(log, newRootDir); err != nil {
		return err
	}
	log.printf("switched root; exec %s (%s in /init)", p.Init, ms(start))
	err = unix.Exec(p.Init, append([]string{p.Init}, args...), os.Environ())
	return fmt.Errorf("exec %s: %w", p.Init, err)
}

func mountKernelFilesystems() error {
	for _, m := range kernelFilesystems {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// attachConsole points stdin, stdout and stderr at /dev/console when the
// kernel could not (an initramfs without a /dev/console node): Go's
// runtime then gave them /dev/null, if it could open even that, and
// nothing /init says would be seen.
func attachConsole() {
	var st unix.Stat_t
	if err := unix.Fstat(2, &st); err == nil &&
		!(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3)) {
		return
	}
	fd, err := unix.Open("/dev/console", unix.O_RDWR, 0)
	if err != nil {
		return
	}
	for i := 0; i <= 2; i++ {
		if fd != i {
			unix.Dup3(fd, i, 0)
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

func mountRoot(p bootParams) error {
	if err := os.MkdirAll(newRootDir, 0o755); err != nil {
		return err
	}
	var flags uintptr
	if p.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(p.Root, newRootDir, p.FSType, flags, p.Options); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", p.Root, p.FSType, newRootDir, err)
	}
	return nil
}

// moveKernelFilesystems moves /dev, /proc and /sys under the new root. A
// move that fails (no such directory in the image) is not fatal: the
// old mount is detached and the real init mounts its own.
func moveKernelFilesystems(log *consoleLog) {
	for _, m := range kernelFilesystems {
		target := filepath.Join(newRootDir, m.target)
		if err := unix.Mount(m.target, target, "", unix.MS_MOVE, ""); err != nil {
			log.printf("%s not moved to %s (%v); detaching it", m.target, target, err)
			unix.Unmount(m.target, unix.MNT_DETACH)
		}
	}
}

// fatal reports why the boot cannot go on, then reboots the VM. It does
// not return: PID 1 must not exit.
func fatal(log *consoleLog, err error) {
	log.printf("FATAL: %v", err)
	log.printf("rebooting in %v", rebootDelay)
	time.Sleep(rebootDelay)
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		log.printf("reboot: %v", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
