#!/usr/bin/env bash
# Runs every test banger has: the README's test command (`make test`).
#
# Tiers, all in one `go test` run:
#   unit   — no privileges, always run, with the race detector;
#   root   — peer-credential and ownership checks that need root; they
#            skip, saying why, when not run as root (CI runs as root);
#   script — the CLI driven as a user would, with real banger and bangerd
#            processes (test/script).
# Then a short fuzz pass: every fuzz target for TEST_FUZZTIME (default
# 3s) each, so that a decoder that starts to panic or misbehave on
# inputs near its seeds fails the run (scripts/fuzz.sh; TEST_FUZZTIME=0
# skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
scripts/install-deps.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test: not root — the root-tier tests will skip (see their messages with -v)" >&2
fi
CGO_ENABLED=1 go test -race -count=1 -timeout 30m "$@" ./...

fuzztime=${TEST_FUZZTIME:-3s}
if [ "$fuzztime" != 0 ]; then
	FUZZTIME=$fuzztime FUZZMINIMIZETIME=0 scripts/fuzz.sh
fi
