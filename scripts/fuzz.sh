#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 30s).
# Usage: scripts/fuzz.sh [FUZZTIME]
set -euo pipefail
fuzztime="${1:-30s}"
cd "$(dirname "$0")/.."
n=0
fail=0
while IFS= read -r line; do
  file="${line%%:*}"
  name="$(sed -E 's/.*func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")"
  pkg="$(dirname "$file")"
  n=$((n + 1))
  printf 'fuzz %-45s %s ... ' "$pkg" "$name"
  if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
    echo ok
  else
    echo FAIL
    echo "$out" | tail -30
    fail=$((fail + 1))
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | sort)
echo "fuzz: $n targets, $fail failed"
[ "$fail" -eq 0 ]
