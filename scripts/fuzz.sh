#!/usr/bin/env bash
# Runs every go test -fuzz target in the tree for FUZZTIME each (default
# 20s; new inputs are minimized for at most FUZZMINIMIZETIME, default 5s —
# 64 KiB filesystem seeds otherwise stall a run). Targets are found, not
# listed, so a new one cannot be forgotten.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-20s}
fail=0
n=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
	pkg=$(dirname "$file")
	n=$((n + 1))
	echo "== $pkg $name ($FUZZTIME)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINIMIZETIME:-5s}" "$pkg"; then
		echo "FAIL: $pkg $name (the failing input is in $pkg/testdata/fuzz/$name/)"
		fail=1
	fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./out/' | sort)
echo "$n fuzz targets run"
exit $fail
