#!/usr/bin/env bash
# The provider dashboard page (dashboard/): its npm packages (npm ci, from
# dashboard/package-lock.json: Chart.js, and playwright-core for its browser
# test), then the static files and the chart library into the directory
# nginx serves as /dashboard/ (FEIRA_DASHBOARD_DIR, default build/dashboard).
# usage: scripts/install-dashboard.sh [DIR]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$FEIRA_ROOT/dashboard
dest=${1:-${FEIRA_DASHBOARD_DIR:-$FEIRA_BUILD/dashboard}}

command -v npm >/dev/null || die "npm is needed for the dashboard page (Debian: npm)"

stamp=$src/node_modules/.feira-stamp
if [ ! -f "$stamp" ] || [ "$src/package-lock.json" -nt "$stamp" ]; then
    say "dashboard: npm ci (dashboard/package-lock.json)"
    (cd "$src" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
fi

lib=$src/node_modules/chart.js/dist/chart.umd.js
[ -f "$lib" ] || die "dashboard: $lib is missing after npm ci"

# a fresh copy beside, then one rename: a running nginx never serves half
tmp=$(mktemp -d "$(dirname "$dest")/.dashboard.XXXXXX" 2>/dev/null) \
    || { mkdir -p "$(dirname "$dest")"; tmp=$(mktemp -d "$(dirname "$dest")/.dashboard.XXXXXX"); }
cp "$src"/src/index.html "$src"/src/app.js "$src"/src/style.css "$tmp/"
mkdir -p "$tmp/vendor"
cp "$lib" "$tmp/vendor/chart.umd.js"
cp "$src/node_modules/chart.js/LICENSE.md" "$tmp/vendor/chart.js.LICENSE.md"
chmod -R a+rX "$tmp"
rm -rf "$dest.old"
[ ! -e "$dest" ] || mv "$dest" "$dest.old"
mv "$tmp" "$dest"
rm -rf "$dest.old"
say "dashboard: installed into $dest"
