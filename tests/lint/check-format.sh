#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails when a C source or header is not formatted as .clang-format says.
set -uo pipefail
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find agent aggregator common tests bench -name '*.[ch]')
[ -n "$files" ] || { echo "no sources found"; exit 1; }
bad=0
for f in $files; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"
    bad=$((bad + 1))
  fi
done
echo "checked $(echo "$files" | wc -w) files, $bad not formatted"
[ "$bad" -eq 0 ]
