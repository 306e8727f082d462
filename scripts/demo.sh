#!/usr/bin/env bash
# banger's main job, end to end, as far as it goes today: build; let the
# CLI start the per-user daemon on demand; run the root helper inside a
# network namespace made for the demo, so the daemon's tap pool fills
# with real taps without touching the host's network; show a bad request
# answered with an op id that is found in the daemon's log; stop it all.
# Runs in a throw-away HOME and leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
scripts/install-deps.sh
make --no-print-directory build

work=$(mktemp -d /tmp/banger-demo.XXXXXX)
ns=""
helper_pid=""
cleanup() {
	./bin/banger daemon stop >/dev/null 2>&1 || true
	[ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null && wait "$helper_pid" 2>/dev/null
	[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$HOME/.config/banger" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
	ns="banger-demo-$$"
	say "banger-helper (root) in network namespace $ns, serving uid $(id -u)"
	ip netns add "$ns"
	mkdir -m 0755 "$work/helper"
	ip netns exec "$ns" ./bin/banger-helper --allow-uid "$(id -u)" \
		--socket "$work/helper/helper.sock" --state "$work/helper/state.json" 2>"$work/helper/helper.log" &
	helper_pid=$!
	printf 'helper_socket = "%s"\ntap_pool_size = 2\n' "$work/helper/helper.sock" >"$HOME/.config/banger/config.toml"
	for _ in $(seq 100); do [ -S "$work/helper/helper.sock" ] && break; sleep 0.05; done
else
	say "not root: skipping banger-helper (the daemon will report it unreachable)"
fi

say "banger version (no daemon yet)"
./bin/banger version

say "banger daemon status — starts bangerd on demand"
./bin/banger daemon status

if [ -n "$ns" ]; then
	for _ in $(seq 100); do ./bin/banger --json daemon status | grep -q '"ready": 2' && break; sleep 0.05; done
	say "the tap pool filled: taps owned by uid $(id -u) on the helper's bridge, inside $ns"
	./bin/banger daemon status | grep -E 'helper|tap pool'
	ip -n "$ns" -br link show type tun
fi

say "banger --json daemon status"
./bin/banger --json daemon status

say "a raw request for an unknown method, straight to the socket"
sock="$XDG_RUNTIME_DIR/banger/bangerd.sock"
answer=$(echo '{"version":1,"method":"vm.explode"}' | socat - "UNIX-CONNECT:$sock")
echo "$answer"
op=$(echo "$answer" | grep -o 'op-[0-9a-f]\{12\}' | head -n1)

say "the daemon's log line for $op"
./bin/banger daemon logs -n 0 | grep "$op"

say "banger daemon stop — releases the pool's taps"
./bin/banger daemon stop
if [ -n "$ns" ]; then
	echo "taps left in $ns: $(ip -n "$ns" -br link show type tun | wc -l)"
	say "one op id in both logs: the daemon's last refill, as the helper saw it"
	refill=$(grep '"tap pool refilled"' "$HOME/.local/state/banger/bangerd.log" | tail -n1 | grep -o 'op-[0-9a-f]\{12\}')
	grep "$refill" "$work/helper/helper.log"
fi

say "done: daemon stopped, helper stopped, namespace and $work removed"
