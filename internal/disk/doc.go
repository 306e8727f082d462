// Package disk makes the two disks every banger VM boots with, as files,
// without root and without mounting anything on the host:
//
//   - the system overlay, a copy-on-write copy of the image's
//     rootfs.ext4 (CloneFile with the reflink or copy strategy; the
//     dm-snapshot strategy is built by banger-helper), grown to the VM's
//     overlay size with Grow;
//   - the work disk, an ext4 file system mounted on /root in the guest,
//     built with mkfs.ext4 -d from a private staging tree holding the
//     image's work seed, the config's file sync entries and the daemon's
//     keys (BuildWorkDisk), and grown with GrowWorkDisk.
//
// File sync copies files out of the user's home on the host, so it is
// where a symlink could carry a secret into a VM: every symlink is
// resolved and must stay inside the directory the entry allows, and
// sources are opened through an os.Root on that directory so a symlink
// swapped in after the check cannot lead out of it either.
package disk
