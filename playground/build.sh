#!/usr/bin/env bash
# Rebuilds playground/dist/ from the sources (npm ci, then build.mjs). Commit the result: the
# server embeds dist/ at compile time, so running the server never needs Node.js.
#
#   playground/build.sh           rebuild dist/
#   playground/build.sh --check   rebuild, then fail if dist/ differs from what is committed
#                                 (the build is deterministic; tests/api/playground.rs checks the
#                                 cheaper thing on every test run: dist/ matches the sources' hash)
set -euo pipefail
cd "$(dirname "$0")"

npm ci --no-audit --no-fund --loglevel=error
node build.mjs

if [ "${1:-}" = "--check" ]; then
  if ! git diff --exit-code --stat -- dist || [ -n "$(git ls-files --others --exclude-standard -- dist)" ]; then
    echo "playground/dist is not the build of the committed sources: commit the rebuilt dist/" >&2
    exit 1
  fi
  echo "playground/dist is the build of its sources"
fi
