#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails when a banned libc function is called (curl's checksrc list): they overflow or
# hide errors. Use snprintf, memcpy with explicit lengths, strtol and friends instead.
set -uo pipefail
files=$(git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^tests/lint/')
hits=$(grep -nE '(^|[^a-zA-Z0-9_.>])(strcpy|sprintf|strtok|atoi|gets)[[:space:]]*\(' $files || true)
if [ -n "$hits" ]; then
  echo "banned functions used:"
  echo "$hits"
  exit 1
fi
echo "no banned functions in $(echo "$files" | wc -w) files"
