#!/usr/bin/env bash
# make fuzz: run every Go fuzz target of the module for a bounded time.
#
#   FUZZTIME          how long each target runs (default 30s)
#   FUZZMINIMIZETIME  how long an interesting or failing input is minimized
#                     (default 10s: several targets sign and verify on each
#                     run, and Go's 60s default would eat their time)
#   FUZZ              run only the targets whose name matches this regexp
#   FUZZPARALLEL      fuzzing workers per target (default: go test's)
#
# A target that fails writes the input to its package's testdata/fuzz/NAME/
# (where `go test`, and so make test, runs it from then on) and the script
# goes on with the others; it exits 1 if any failed. Each target's last
# status line (time, executions, corpus) is printed as it ends.
set -uo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=go1.27.3

fuzztime=${FUZZTIME:-30s}
minimize=${FUZZMINIMIZETIME:-10s}
filter=${FUZZ:-.}
parallel=()
if [ -n "${FUZZPARALLEL:-}" ]; then parallel=(-parallel "$FUZZPARALLEL"); fi

# Every "func FuzzX(f *testing.F)" in a _test.go file, as DIR NAME.
targets=$(git ls-files -co --exclude-standard '*_test.go' ':!:tools/**' ':!:**/vendor/**' |
	xargs grep -H -o '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' |
	sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort -u | grep -E " .*${filter}")
if [ -z "$targets" ]; then
	echo "no fuzz target matches FUZZ=$filter" >&2
	exit 1
fi

failed=()
n=0
while read -r dir name; do
	n=$((n + 1))
	printf '== %s ./%s (%s)\n' "$name" "$dir" "$fuzztime"
	log=$(mktemp)
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "${parallel[@]}" "./$dir" >"$log" 2>&1; then
		grep '^fuzz: elapsed' "$log" | tail -1
	else
		cat "$log"
		failed+=("$name (./$dir)")
	fi
	rm -f "$log"
done <<<"$targets"

echo
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: %d of %d targets failed:\n' "${#failed[@]}" "$n"
	printf '  %s\n' "${failed[@]}"
	echo "the failing inputs are in each package's testdata/fuzz/; go test runs them"
	exit 1
fi
printf 'fuzz: %d targets ran for %s each, none failed\n' "$n" "$fuzztime"
