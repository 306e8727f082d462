#!/bin/sh
# Regenerates the xz fixtures of TestExtractVmlinuxKernelXZ, and the tiny
# ones FuzzExtractVmlinux seeds from, with xz-utils from the synthetic
# vmlinux the tests build. Run from internal/kernel:
#   sh testdata/make-xz-fixtures.sh
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
KERNEL_TEST_WRITE_VMLINUX="$tmp/vmlinux" go test -run TestWriteFixtureVmlinux -count=1 . >/dev/null
xz -c --check=crc32 --x86 --lzma2=dict=1MiB "$tmp/vmlinux" >testdata/vmlinux-x86-crc32.xz
xz -c --check=crc64 --x86 --lzma2=dict=64KiB --block-size=10000 "$tmp/vmlinux" >testdata/vmlinux-x86-crc64-blocks.xz
xz -c --check=sha256 --x86 --lzma2 "$tmp/vmlinux" >testdata/vmlinux-x86-sha256.xz
xz -c --check=none --lzma2=preset=1 "$tmp/vmlinux" >testdata/vmlinux-lzma2-none.xz
xz -c --check=crc32 --x86 --lzma2=dict=4KiB "$tmp/vmlinux-tiny" >testdata/tiny-x86-crc32.xz
xz -c --check=crc64 --x86 --lzma2=dict=4KiB --block-size=256 "$tmp/vmlinux-tiny" >testdata/tiny-x86-crc64-blocks.xz
xz -c --check=sha256 --x86=start=16 --lzma2=dict=4KiB "$tmp/vmlinux-tiny" >testdata/tiny-x86-start-sha256.xz
