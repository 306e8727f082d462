#!/usr/bin/env bash
# Confirms banger on real hardware: the VM lifecycle under the real
# Firecracker binary, each step timed. For a user on a host with
# Firecracker installed (on $PATH, or FIRECRACKER=/path/to/firecracker),
# a /dev/kvm they can open, banger installed (`sudo banger system
# install`, so banger-helper runs) and a default image (`banger image
# build`). It cannot run on banger's CI machines, which have neither.
#
# It creates one VM named fc-verify-$$ (no NAT), and removes it at the end,
# also when a step fails.
set -euo pipefail
banger=${BANGER:-banger}
fc=${FIRECRACKER:-firecracker}
name="fc-verify-$$"

command -v "$banger" >/dev/null || { echo "verify-firecracker: $banger not found (set BANGER=)" >&2; exit 1; }
command -v "$fc" >/dev/null || { echo "verify-firecracker: $fc not found (set FIRECRACKER=)" >&2; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "verify-firecracker: /dev/kvm is not read-write for $(id -un)" >&2; exit 1; }
echo "firecracker: $("$fc" --version 2>&1 | head -1)"

trap '"$banger" vm rm --force "$name" >/dev/null 2>&1 || true' EXIT

step() {
	local what=$1; shift
	local t0 t1
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	printf '%-28s %6d ms\n' "$what" $(((t1 - t0) / 1000000))
}

step "create (to SSH ready)" "$banger" vm create --vmm firecracker --name "$name" >/dev/null
"$banger" vm show "$name" | grep -E '^(vmm|state|overlay|system)' || true
step "exec uname -a" "$banger" vm exec "$name" -- uname -a
step "write /root/kept" "$banger" vm exec "$name" -- sh -c 'echo kept > /root/kept && sync'
step "stop (Ctrl+Alt+Del)" "$banger" vm stop "$name"
step "start (to SSH ready)" "$banger" vm start "$name"
step "file survived restart" "$banger" vm exec "$name" -- grep -q kept /root/kept
step "restart" "$banger" vm restart "$name"
step "rm --force" "$banger" vm rm --force "$name"
trap - EXIT
echo "verify-firecracker: the lifecycle works under $fc"
