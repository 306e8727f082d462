#!/usr/bin/env bash
# banger's main job, end to end: a VM from the default image, a command in
# it over SSH, and everything removed again.
#
# Network rule: the bridge, the taps, the guest and the daemon that runs it
# all live in a network namespace this script creates, with no route out;
# the guest gets no DNS server outside it. Only the image build talks to
# the outside, to download Debian's packages, so it runs first, with a
# daemon outside the namespace.
#
# The demo's banger data — the default image and its record, the package
# cache, the daemon's log and key — is kept in ~/.cache/banger-demo, so
# that the next run does not build again (rm -rf it to start over); the
# rest is thrown away.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo runs as root: it creates a network namespace and runs banger-helper" >&2
	exit 1
fi
scripts/install-deps.sh
make --no-print-directory build

bin=$PWD/bin
keep="${XDG_CACHE_HOME:-$HOME/.cache}/banger-demo"
work=$(mktemp -d /tmp/banger-demo.XXXXXX)
ns="banger-demo-$$"
helper_pid=""

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
inns() { ip netns exec "$ns" "$@"; }

cleanup() {
	set +e
	if ip netns list | grep -qw "$ns"; then
		inns "$bin/banger" vm rm --force demo >/dev/null 2>&1
		inns "$bin/banger" daemon stop >/dev/null 2>&1
	fi
	"$bin/banger" daemon stop >/dev/null 2>&1
	[ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null && wait "$helper_pid" 2>/dev/null
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

export HOME="$work/home" XDG_RUNTIME_DIR="$work/run"
export XDG_DATA_HOME="$keep/data" XDG_CACHE_HOME="$keep/cache" XDG_STATE_HOME="$keep/state"
mkdir -p "$HOME/.config/banger" "$XDG_RUNTIME_DIR" "$work/helper"
chmod 700 "$XDG_RUNTIME_DIR"
cat >"$HOME/.config/banger/config.toml" <<EOF
helper_socket = "$work/helper/helper.sock"
tap_pool_size = 1
# The bridge's own address: the guest gets no DNS server outside the namespace.
default_dns = "172.16.0.1"

[vm_defaults]
vcpu_count = 1
memory_mib = 1024
EOF

if "$bin/banger" image show default >/dev/null 2>&1; then
	say "the default image exists (from an earlier demo, in $keep)"
	"$bin/banger" image ls
else
	say "banger image build — the default Debian image, from packages (a few minutes the first time)"
	"$bin/banger" image build
fi
"$bin/banger" daemon stop >/dev/null

say "network namespace $ns: banger-helper (root) and, from here on, bangerd and the VM live in it"
ip netns add "$ns"
inns ip link set lo up
inns "$bin/banger-helper" --allow-uid "$(id -u)" \
	--socket "$work/helper/helper.sock" --state "$work/helper/state.json" 2>"$work/helper/helper.log" &
helper_pid=$!
for _ in $(seq 100); do [ -S "$work/helper/helper.sock" ] && break; sleep 0.05; done

say "banger vm create --name demo"
inns "$bin/banger" vm create --name demo

say "banger vm exec demo -- uname -a"
inns "$bin/banger" vm exec demo -- uname -a

say "banger vm exec demo -- cat /etc/os-release"
inns "$bin/banger" vm exec demo -- cat /etc/os-release

say "banger vm ls"
inns "$bin/banger" vm ls

say "banger vm rm --force demo"
inns "$bin/banger" vm rm --force demo
inns "$bin/banger" vm ls

say "done: the VM, the daemon, the helper and namespace $ns are gone; the image stays in $keep"
