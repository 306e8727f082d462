package guest

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"banger/internal/guestapi"
)

// system is what setup changes beyond the files under its root: the
// kernel's network configuration, hostname and mounts. linuxSystem is
// the real one; tests use a fake and a temporary root.
type system interface {
	ConfigureNetwork(c guestapi.Config) (string, error)
	SetHostname(name string) error
	// MountWorkDisk mounts device on dir unless dir is already a mount
	// point, and reports whether it mounted.
	MountWorkDisk(device, dir string) (bool, error)
}

// linuxSystem is the running kernel.
type linuxSystem struct{}

var _ system = linuxSystem{}

func (linuxSystem) ConfigureNetwork(c guestapi.Config) (string, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("open netlink: %w", err)
	}
	defer h.Close()
	return configureNetwork(h, c)
}

func (linuxSystem) SetHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	return nil
}

func (linuxSystem) MountWorkDisk(device, dir string) (bool, error) {
	return mountWorkDisk(device, dir)
}

// runSetup applies the configuration on the kernel command line cmdline
// to the system sys whose root filesystem is at root ("/" in a VM). A
// command line without banger parameters (a kernel booted by hand) is
// not an error: there is nothing to apply. Each step runs even when an
// earlier one failed, so that as much as possible works and every
// failure is reported; the returned error joins them all.
func runSetup(log *consoleLog, sys system, root, cmdline string) error {
	start := time.Now()
	c, err := guestapi.ParseCmdline(cmdline)
	if errors.Is(err, guestapi.ErrNotConfigured) {
		log.printf("setup: %v; nothing to do", err)
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error

	t := time.Now()
	if name, err := sys.ConfigureNetwork(c); err != nil {
		errs = append(errs, err)
	} else {
		via := ""
		if c.Gateway.IsValid() {
			via = " via " + c.Gateway.String()
		}
		log.printf("setup: %s %s%s (%s)", name, c.Address, via, ms(t))
	}

	t = time.Now()
	if err := writeNameFiles(root, c.Hostname, c.DNS); err != nil {
		errs = append(errs, err)
	} else if err := sys.SetHostname(c.Hostname); err != nil {
		errs = append(errs, err)
	} else {
		log.printf("setup: hostname %s (%s)", c.Hostname, ms(t))
	}

	t = time.Now()
	home := filepath.Join(root, guestapi.WorkMountPoint)
	if mounted, err := sys.MountWorkDisk(c.Work(), home); err != nil {
		errs = append(errs, err)
	} else if n, err := fixWorkOwnership(home); err != nil {
		errs = append(errs, fmt.Errorf("work disk ownership: %w", err))
	} else {
		what := "already mounted"
		if mounted {
			what = "mounted " + c.Work()
		}
		log.printf("setup: %s %s, %d ownership/mode fixes (%s)", guestapi.WorkMountPoint, what, n, ms(t))
	}

	t = time.Now()
	if did, err := installHostKey(root, "root@"+c.Hostname); err != nil {
		errs = append(errs, err)
	} else {
		log.printf("setup: %s (%s)", did, ms(t))
	}

	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.printf("setup: done in %s", ms(start))
	return nil
}
