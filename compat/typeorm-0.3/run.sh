#!/usr/bin/env bash
# TypeORM 0.3 with sqlite3 keeps working: builds and packs the library, installs it
# in a temporary app on the newest TypeORM 0.3 with the sqlite3 driver (compiled from source by
# node-gyp), and runs smoke.mjs there. The repository's own node_modules (TypeORM 1,
# better-sqlite3) are never used or touched. KEEP=1 keeps the temporary app for a look.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/nestjs-session-auth-typeorm-0.3.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then echo "(keeping $work)"; else trap 'rm -rf "$work"' EXIT; fi

echo "== build and pack the library"
(cd "$root" && npm run build --silent)
tarball="$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)"
mv "$work/$tarball" "$work/nestjs-session-auth.tgz"
cp "$here/package.json" "$here/smoke.mjs" "$work/"

echo "== npm install in $work (TypeORM 0.3, sqlite3 from source)"
start=$SECONDS
(cd "$work" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
echo "   installed in $((SECONDS - start)) s"
(cd "$work" && node -e "
  const version = (name) => JSON.parse(require('fs').readFileSync('node_modules/' + name + '/package.json', 'utf8')).version;
  if (!version('typeorm').startsWith('0.3.')) throw new Error('expected TypeORM 0.3, got ' + version('typeorm'));
  new (require('sqlite3').Database)(':memory:').get('select sqlite_version() as v', (error, row) => {
    if (error) throw error;
    console.log('   typeorm ' + version('typeorm') + ', sqlite3 ' + version('sqlite3') + ' (SQLite ' + row.v + ')');
  });")

echo "== smoke test"
(cd "$work" && node smoke.mjs)
