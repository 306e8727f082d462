#!/usr/bin/env bash
# banger's main job, end to end, as far as it goes today: build, let the
# CLI start the per-user daemon on demand, inspect it, show that a bad
# request is answered with an op id that can be found in the daemon's
# log, and stop it. Runs in a throw-away HOME so it leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
scripts/install-deps.sh
make --no-print-directory build

work=$(mktemp -d /tmp/banger-demo.XXXXXX)
cleanup() {
	./bin/banger daemon stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "banger version (no daemon yet)"
./bin/banger version

say "banger daemon status — starts bangerd on demand"
./bin/banger daemon status

say "banger --json daemon status"
./bin/banger --json daemon status

say "a raw request for an unknown method, straight to the socket"
sock="$XDG_RUNTIME_DIR/banger/bangerd.sock"
answer=$(echo '{"version":1,"method":"vm.explode"}' | socat - "UNIX-CONNECT:$sock")
echo "$answer"
op=$(echo "$answer" | grep -o 'op-[0-9a-f]\{12\}' | head -n1)

say "the daemon's log line for $op"
./bin/banger daemon logs -n 0 | grep "$op"

say "banger daemon stop"
./bin/banger daemon stop

say "done: the daemon is stopped and $work is removed"
