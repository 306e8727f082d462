#!/usr/bin/env bash
# Runs every fuzz target in the module for a while: `make fuzz`, and the
# short pass at the end of `make test` (scripts/test.sh).
#
#   FUZZTIME          how long each target fuzzes (default 30s)
#   FUZZMINIMIZETIME  how long the fuzzer may spend shrinking an input
#                     it found (default 10s; 0 turns it off, which is
#                     right for a short pass: a few seconds of fuzzing
#                     are better spent fuzzing, and a failing input is
#                     written to testdata/fuzz/ all the same)
#
# `go test -fuzz` takes one target per run, so each target gets its own;
# the targets are found by name (func FuzzXxx in a _test.go file), so a
# new one is fuzzed without being listed here. The seed corpora (f.Add
# and testdata/fuzz/) also run in every plain `go test`. At the end it
# prints each target's executions per second, and exits non-zero if any
# target failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

fuzztime=${FUZZTIME:-30s}
minimize=${FUZZMINIMIZETIME:-10s}

# "dir target" per line, in a stable order.
targets=$(grep -rHo --include='*_test.go' --exclude-dir=testdata --exclude-dir=.git \
	'^func Fuzz[A-Za-z0-9_]*(' . |
	sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|' | sort -u)
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

# deadline_race reports whether a failed run's only complaint is Go's
# own "context deadline exceeded" as -fuzztime runs out: a race in the
# fuzz coordinator of Go before 1.27 (go.dev/issue/75804), with no
# input failing. A real failure names its input ("Failing input
# written to ...") or its seed ("--- FAIL: FuzzX/seed#N"), or panics.
deadline_race() {
	grep -qE '^[[:space:]]+context deadline exceeded$' "$1" &&
		! grep -qE 'Failing input written|^[[:space:]]*--- FAIL: Fuzz[^ ]*/|panic:' "$1"
}

raced=no
log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=()
failed=()
while read -r dir name; do
	echo "fuzz: $name ($dir) for $fuzztime"
	start=$(date +%s.%N)
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$dir" >"$log" 2>&1; then
		status=ok
	elif deadline_race "$log"; then
		status=ok*
		raced=yes
	else
		status=FAIL
		failed+=("$name ($dir)")
		cat "$log"
	fi
	took=$(echo "$(date +%s.%N) - $start" | bc)
	# The last progress line: "fuzz: elapsed: 5s, execs: 123456 (24691/sec), ...".
	line=$(grep -E '^fuzz: elapsed: [0-9]+s, execs: [0-9]+' "$log" | tail -1 || true)
	elapsed=$(sed -E 's/^fuzz: elapsed: ([0-9]+)s.*/\1/' <<<"$line")
	execs=$(sed -E 's/.*execs: ([0-9]+).*/\1/' <<<"$line")
	rate="?"
	if [ -n "$line" ] && [ "$elapsed" -gt 0 ]; then
		rate=$((execs / elapsed))
	fi
	summary+=("$(printf '%-4s %-32s %-22s %10s execs %8s/s  (%.0fs with the build)' \
		"$status" "$name" "$dir" "${execs:-?}" "$rate" "$took")")
done <<<"$targets"

echo "fuzz: each target for $fuzztime:"
printf '  %s\n' "${summary[@]}"
if [ "$raced" = yes ]; then
	echo "  (ok*: stopped with Go's \"context deadline exceeded\" as the time ran out and no input failing: go.dev/issue/75804, fixed in Go 1.27)"
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: failed: ${failed[*]}" >&2
	exit 1
fi
