package hostnet

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CreateTap makes a persistent tap named name, owned by uid, marked with
// alias (how reconcile recognises the helper's own links), attached to
// bridge and up. The tap is created exclusively: an existing interface of
// that name makes it fail rather than be reused. On any failure after the
// tap exists, it is deleted again.
//
// The tap is made with ioctls rather than netlink's Tuntap because that
// also sets a group, and the kernel then demands the opener be both the
// owner and in the group; an owner alone is what a user's VMM needs.
func CreateTap(name string, uid uint32, alias, bridge string) (err error) {
	if err := createPersistentTap(name, uid); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if derr := DeleteLink(name); derr != nil && !errors.Is(derr, ErrNotFound) {
				err = errors.Join(err, derr)
			}
		}
	}()
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up new tap %s: %w", name, err)
	}
	if err := netlink.LinkSetAlias(link, alias); err != nil {
		return fmt.Errorf("mark tap %s: %w", name, err)
	}
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", bridge, err)
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("attach tap %s to %s: %w", name, bridge, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring tap %s up: %w", name, err)
	}
	return nil
}

// ErrExists is returned when an interface already has the name asked for.
var ErrExists = errors.New("interface exists")

type ifreq struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// createPersistentTap is `ip tuntap add NAME mode tap user UID` in three
// ioctls: create (exclusively), set the owner, make it outlive this fd.
// IFF_VNET_HDR matches what Firecracker and QEMU ask for when they open it.
func createPersistentTap(name string, uid uint32) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/net/tun: %w", err)
	}
	defer unix.Close(fd)
	var req ifreq
	copy(req.name[:unix.IFNAMSIZ-1], name)
	req.flags = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR | unix.IFF_TUN_EXCL
	if err := ioctl(fd, unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); err != nil {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create tap %s: %w", name, ErrExists)
		}
		return fmt.Errorf("create tap %s: %w", name, err)
	}
	if err := ioctl(fd, unix.TUNSETOWNER, uintptr(uid)); err != nil {
		return fmt.Errorf("set owner of tap %s to uid %d: %w", name, uid, err)
	}
	if err := ioctl(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("make tap %s persistent: %w", name, err)
	}
	return nil
}

func ioctl(fd int, req uint, arg uintptr) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg); errno != 0 {
		return errno
	}
	return nil
}

// TapOwner reads the owner uid of tap name from sysfs (-1: none).
func TapOwner(name string) (int, error) {
	data, err := os.ReadFile("/sys/class/net/" + name + "/owner")
	if err != nil {
		return 0, fmt.Errorf("read owner of %s: %w", name, err)
	}
	var uid int
	if _, err := fmt.Sscanf(string(data), "%d", &uid); err != nil {
		return 0, fmt.Errorf("parse owner of %s: %q", name, data)
	}
	return uid, nil
}
