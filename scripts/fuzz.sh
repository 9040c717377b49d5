#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 30s).
# Usage: scripts/fuzz.sh [FUZZTIME]
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" right at the -fuzztime boundary when a worker is mid-call
# (golang/go#75804, fixed in Go 1.27). That is not a finding: a real one
# prints "Failing input written to testdata/fuzz/...". Such a bare deadline
# is retried once, and reported (not failed) if it happens again; any other
# failure fails the run.
set -euo pipefail
fuzztime="${1:-30s}"
cd "$(dirname "$0")/.."

bare_deadline() {
  grep -q "context deadline exceeded" <<<"$1" &&
    ! grep -qE "Failing input written|panic:|_test\.go:[0-9]+:" <<<"$1"
}

n=0
fail=0
flaked=0
while IFS= read -r line; do
  file="${line%%:*}"
  name="$(sed -E 's/.*func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")"
  pkg="$(dirname "$file")"
  n=$((n + 1))
  printf 'fuzz %-45s %s ... ' "$pkg" "$name"
  for attempt in 1 2; do
    if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
      echo ok
      break
    fi
    if bare_deadline "$out"; then
      if [ "$attempt" -eq 1 ]; then
        printf '(fuzztime deadline race, retrying) '
        continue
      fi
      echo "ok (fuzztime deadline race twice, no failing input: golang/go#75804)"
      flaked=$((flaked + 1))
      break
    fi
    echo FAIL
    echo "$out" | tail -30
    fail=$((fail + 1))
    break
  done
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | sort)
echo "fuzz targets: $n; fuzztime deadline races tolerated: $flaked"
echo "fuzz: $((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
