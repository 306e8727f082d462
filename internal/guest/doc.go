// Package guest is banger-guest, the small static program banger puts in
// every image, seen from inside the VM. It has two roles:
//
//   - /init of banger's initramfs (init.go): mount /dev, /proc and /sys,
//     load the virtio and ext4 modules a distribution kernel lacks, mount
//     the root disk named on the kernel command line and switch to the real
//     init, the way busybox's switch_root does.
//   - `banger-guest setup`, an early-boot systemd service in the real
//     system (setup.go): apply what the daemon put on the kernel command
//     line (guestapi.Config) — address, route, DNS, hostname — mount the
//     work disk on /root and put the SSH host and authorized keys where
//     sshd accepts them, before ssh.service starts.
//
// It also owns the systemd unit that runs setup and the list of units an
// image masks for fast microVM boots (unit.go), so the image builder
// writes what this program expects.
//
// The code that can only run inside a VM (mount, finit_module, chroot,
// reboot, netlink on the VM's NIC) is kept in thin functions; everything
// that decides what to do is a pure function with tests.
package guest
