#!/usr/bin/env bash
# banger's main job, end to end: a git repository with uncommitted work
# goes into a VM from the default image (banger run), a command there
# fixes a bug and commits, and the commit comes back to the host as the
# branch banger/demo — the host's working tree untouched — and the VM is
# removed again.
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

repo="$work/src/myproject"
say "a git repository with uncommitted work: $repo"
mkdir -p "$repo"
git -C "$repo" init -q -b main
git -C "$repo" config user.name "Demo User"
git -C "$repo" config user.email demo@example.com
printf 'status: bug\n' >"$repo/app.txt"
printf '.env\n' >"$repo/.gitignore"
git -C "$repo" add . && git -C "$repo" commit -qm "the app, with a bug"
printf 'notes: not committed yet\n' >"$repo/NOTES"
printf 'SECRET=stays-on-the-host\n' >"$repo/.env"
git -C "$repo" status --short

say "banger run $repo -- (look around, fix the bug, commit)"
inns "$bin/banger" run "$repo" --name demo -- sh -c '
	echo "in the guest: $(hostname):$(pwd) on $(git branch --show-current)"
	git status --short
	test -e .env || echo "(.env is ignored: it never left the host)"
	sed -i s/bug/fixed/ app.txt && git commit -qam "fix the bug" && git log --oneline -2'

say "back on the host: the commit is the branch banger/demo; the working tree is as it was"
git -C "$repo" log --oneline main..banger/demo
git -C "$repo" status --short
git -C "$repo" show --stat --format='%h %s' banger/demo | cat

say "banger vm ls (banger run removed its VM)"
inns "$bin/banger" vm ls

say "done: the VM, the daemon, the helper and namespace $ns are gone; the image stays in $keep"
