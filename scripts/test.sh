#!/usr/bin/env bash
# Runs every test banger has: the README's test command (`make test`).
#
# Tiers, all in one `go test` run:
#   unit   — no privileges, always run, with the race detector;
#   root   — peer-credential and ownership checks that need root; they
#            skip, saying why, when not run as root (CI runs as root);
#   script — the CLI driven as a user would, with real banger and bangerd
#            processes (test/script).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
scripts/install-deps.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test: not root — the root-tier tests will skip (see their messages with -v)" >&2
fi
CGO_ENABLED=1 go test -race -count=1 -timeout 30m "$@" ./...
