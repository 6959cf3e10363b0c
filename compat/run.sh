#!/usr/bin/env bash
# The packed library in a new user's app: builds and packs it, installs it in a temporary copy of
# one app folder of compat/ (its own Nest, TypeORM and SQLite driver; native drivers built as npm
# builds them), type-checks the app if it has a `typecheck` script, and runs the shared smoke
# suite (compat/smoke) its way (`npm run smoke`). The repository's own node_modules are never used
# or touched. Usage: compat/run.sh nest11-typeorm0.3-cjs|nest12-typeorm1-esm|nest12-fastify-esm [...]; KEEP=1 keeps the
# temporary apps for a look.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
[ $# -gt 0 ] || { echo "usage: $0 <app folder under compat/>..." >&2; exit 2; }

echo "== build and pack the library"
(cd "$root" && npm run build --silent)
pack="$(mktemp -d "${TMPDIR:-/tmp}/nestjs-session-auth-pack.XXXXXX")"
trap 'rm -rf "$pack"' EXIT
tarball="$(cd "$root" && npm pack --silent --pack-destination "$pack" | tail -n 1)"

for app in "$@"; do
  [ -f "$here/$app/package.json" ] || { echo "no app compat/$app" >&2; exit 2; }
  work="$(mktemp -d "${TMPDIR:-/tmp}/nestjs-session-auth-$app.XXXXXX")"
  cp -r "$here/$app/." "$work/"
  cp "$here/smoke/"* "$work/"
  cp "$pack/$tarball" "$work/nestjs-session-auth.tgz"
  echo "== $app: npm install in $work"
  start=$SECONDS
  (cd "$work" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
  echo "   installed in $((SECONDS - start)) s"
  if (cd "$work" && node -e "process.exit(require('./package.json').scripts?.typecheck ? 0 : 1)"); then
    echo "== $app: type check"
    (cd "$work" && npm run --silent typecheck)
  fi
  echo "== $app: smoke suite"
  (cd "$work" && npm run --silent smoke)
  if [ "${KEEP:-0}" = 1 ]; then echo "(kept $work)"; else rm -rf "$work"; fi
done
