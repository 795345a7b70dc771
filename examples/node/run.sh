#!/usr/bin/env bash
# Runs the @stoqey/ib smoke test against the fake IB Gateway.
#
#     examples/node/run.sh [PATH/TO/brokerkit] [smoke.mjs options, e.g. --script FILE]
#
# PATH/TO/brokerkit defaults to bin/brokerkit (make build). Installs the pinned
# packages (npm ci, from package-lock.json) when node_modules lacks them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bk="${1:-$here/../../bin/brokerkit}"
[ $# -gt 0 ] && shift
case "$bk" in /*) ;; *) bk="$PWD/$bk" ;; esac

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (Node.js 18 or later is needed)" >&2; exit 1; }
done
want="$(node -p 'require(process.argv[1]).dependencies["@stoqey/ib"]' "$here/package.json")"
have="$(node -p 'try { require(process.argv[1]).version } catch { "" }' "$here/node_modules/@stoqey/ib/package.json")"
if [ "$have" != "$want" ] || [ ! -d "$here/node_modules/rxjs" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
    echo "run.sh: npm ci failed in $here" >&2
    exit 1
  }
fi
exec node "$here/smoke.mjs" --brokerkit "$bk" "$@"
