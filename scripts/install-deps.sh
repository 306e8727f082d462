#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian
# machine: Debian packages (only the missing ones, only when root) and the
# Go module cache. Safe to run again; does nothing when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

# command:package pairs. gcc and libc6-dev are for `go test -race`; socat
# sends raw requests to the daemon socket in the demo; flock (util-linux)
# is used by the lock tests; ip (iproute2) makes the tests' network
# namespaces; iptables is what banger-helper's NAT runs; mmdebstrap builds
# images (uidmap gives it unshare mode for unprivileged users), mkfs.ext4
# makes their file systems, QEMU boots guests; cpio and ssh-keygen check
# banger's own archives and keys in tests; XFS and btrfs file systems (made
# in files, loop-mounted) prove reflinked overlays; dmsetup builds
# dm-snapshot overlays where the kernel has device-mapper.
needs=(gcc:gcc socat:socat flock:util-linux ip:iproute2 iptables:iptables iptables-save:iptables
	mmdebstrap:mmdebstrap newuidmap:uidmap mkfs.ext4:e2fsprogs qemu-system-x86_64:qemu-system-x86
	cpio:cpio ssh-keygen:openssh-client mkfs.xfs:xfsprogs mkfs.btrfs:btrfs-progs dmsetup:dmsetup)
missing=()
for pair in "${needs[@]}"; do
	pkg="${pair#*:}"
	if ! command -v "${pair%%:*}" >/dev/null 2>&1 && [[ " ${missing[*]} " != *" $pkg "* ]]; then
		missing+=("$pkg")
	fi
done
if [ ! -e /usr/include/stdio.h ]; then missing+=(libc6-dev); fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
	echo "install-deps: Go is not installed (expected at /usr/local/go)" >&2
	exit 1
fi
go mod download
