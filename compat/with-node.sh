#!/usr/bin/env bash
# Run a command under another Node line, taken from the npm registry's `node` package (no system
# install, no download from nodejs.org): it is put first on PATH for the command and everything it
# starts (npm scripts, nest build, the apps). Kept in NODE_CACHE (default in the temporary folder)
# for the next run. Usage: compat/with-node.sh 26 node compat/first-hour.mjs esm
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <node major> <command...>" >&2; exit 2; }
major="$1"
shift
dir="${NODE_CACHE:-${TMPDIR:-/tmp}/nestjs-session-auth-node}/$major"
if [ ! -x "$dir/node_modules/.bin/node" ]; then
  mkdir -p "$dir"
  (cd "$dir" && echo '{ "private": true }' > package.json && npm install --no-audit --no-fund --loglevel=error "node@$major")
fi
export PATH="$dir/node_modules/.bin:$PATH"
echo "== under node $(node --version) ($dir)"
"$@"
