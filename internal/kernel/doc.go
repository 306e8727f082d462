// Package kernel reads the Linux kernels banger boots: it classifies a
// kernel file (an ELF vmlinux or an x86 bzImage), extracts the ELF
// vmlinux from a bzImage (Firecracker needs it, and QEMU boots it ~3 s
// faster under TCG when it carries a PVH note), and works out which
// modules from a kernel's modules directory a guest must load, in order,
// before its root disk can be mounted.
//
// Everything here is pure Go and reads only files; nothing is loaded or
// executed.
package kernel
