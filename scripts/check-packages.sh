#!/usr/bin/env bash
# Packaging gate: publint and `attw --pack --profile esm-only` on every publishable package.
# Needs a build first (`pnpm build`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/node_modules/.bin"
status=0
for dir in "$root"/packages/*/; do
  [ -f "$dir/package.json" ] || continue
  name=$(node -p "require('$dir/package.json').name")
  if [ "$(node -p "Boolean(require('$dir/package.json').private)")" = true ]; then echo "== $name (private, skipped)"; continue; fi
  echo "== $name"
  (cd "$dir" && "$bin/publint" --strict) || status=1
  (cd "$dir" && "$bin/attw" --pack . --profile esm-only) || status=1
done
exit $status
