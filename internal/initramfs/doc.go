// Package initramfs writes the initramfs banger boots its guests with:
// a cpio "newc" archive holding banger-guest as /init and the kernel
// modules it must load before the root disk can be found, listed in
// load order in /etc/banger/modules.load (see package guestapi for the
// layout). It also owns the newc writer and reader underneath, which
// know nothing about banger.
package initramfs
