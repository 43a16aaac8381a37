#!/usr/bin/env bash
# Front-end bundles from npm into casemgr/static/vendor/ (git-ignored): bpmn-js (navigated
# viewer for the case page, modeler for process owners), the bpmn-js properties panel, dmn-js
# and Chart.js. Every package ships ready browser builds in its dist/, so this only copies
# files: no bundler, nothing minified or vendored in git.
#
# Idempotent: the bundles are assembled in a staging folder and swapped in whole, so a
# failed run never leaves half a vendor folder behind, and a second run gives the same tree.
# Needs only the npm registry (npm ci from package-lock.json; npm install when no lock yet);
# --prefer-offline reuses npm's cache, so a rebuild works without the network once cached.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENDOR="casemgr/static/vendor"
NM="node_modules"

if ! command -v npm >/dev/null 2>&1; then
  echo "build-assets: npm is not installed. Install Node.js 20 and npm (Debian: apt-get install nodejs npm)." >&2
  exit 1
fi

# Install scripts are switched off: none of these packages needs one to ship its dist/,
# and a postinstall hook is code from the registry that would run on this machine.
NPM_FLAGS=(--ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
if [ -f package-lock.json ]; then
  npm ci "${NPM_FLAGS[@]}"
else
  npm install "${NPM_FLAGS[@]}"
fi

STAGE="$(mktemp -d "${VENDOR}.staging.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# copy SRC DEST: one file, failing loudly if a package no longer ships it (a version bump
# that moved a bundle must break the build, not the case page).
copy() {
  local src="$NM/$1" dest="$STAGE/$2"
  if [ ! -f "$src" ]; then
    echo "build-assets: $src is missing; did a package version change its dist/ layout?" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dest")"
  cp "$src" "$dest"
}

# copy_dir SRC DEST: a folder of fonts or stylesheets, kept with its relative layout
# (the font CSS refers to ../font/…).
copy_dir() {
  local src="$NM/$1" dest="$STAGE/$2"
  if [ ! -d "$src" ]; then
    echo "build-assets: $src is missing; did a package version change its dist/ layout?" >&2
    exit 1
  fi
  mkdir -p "$dest"
  cp -R "$src/." "$dest/"
}

# bpmn-js: the navigated viewer (case page) and the modeler (process owners), with CSS and font.
copy bpmn-js/dist/bpmn-navigated-viewer.production.min.js bpmn-js/bpmn-navigated-viewer.production.min.js
copy bpmn-js/dist/bpmn-modeler.production.min.js bpmn-js/bpmn-modeler.production.min.js
copy bpmn-js/dist/assets/bpmn-js.css bpmn-js/assets/bpmn-js.css
copy bpmn-js/dist/assets/diagram-js.css bpmn-js/assets/diagram-js.css
copy_dir bpmn-js/dist/assets/bpmn-font bpmn-js/assets/bpmn-font

# The properties panel: bpmn-js-properties-panel's UMD build (it bundles
# @bpmn-io/properties-panel's code) and @bpmn-io/properties-panel's stylesheet.
copy bpmn-js-properties-panel/dist/bpmn-js-properties-panel.umd.js \
  bpmn-js-properties-panel/bpmn-js-properties-panel.umd.js
copy bpmn-js-properties-panel/dist/bpmn-js-properties-panel.umd.js.map \
  bpmn-js-properties-panel/bpmn-js-properties-panel.umd.js.map
copy @bpmn-io/properties-panel/dist/assets/properties-panel.css \
  properties-panel/properties-panel.css

# dmn-js: modeler and viewers, every stylesheet and the DMN font.
for bundle in dmn-modeler dmn-viewer dmn-navigated-viewer; do
  copy "dmn-js/dist/$bundle.production.min.js" "dmn-js/$bundle.production.min.js"
done
for css in "$NM"/dmn-js/dist/assets/*.css; do
  copy "dmn-js/dist/assets/$(basename "$css")" "dmn-js/assets/$(basename "$css")"
done
copy_dir dmn-js/dist/assets/dmn-font dmn-js/assets/dmn-font

# Chart.js: the UMD build exposes window.Chart.
copy chart.js/dist/chart.umd.js chart.js/chart.umd.js
copy chart.js/dist/chart.umd.js.map chart.js/chart.umd.js.map

# What was installed, for people and for the app (it may show the versions).
node -e '
const lock = require("./" + (require("fs").existsSync("package-lock.json") ? "package-lock.json" : "package.json"));
const names = ["bpmn-js", "bpmn-js-properties-panel", "@bpmn-io/properties-panel", "dmn-js", "chart.js"];
const versions = {};
for (const n of names) {
  const entry = (lock.packages || {})["node_modules/" + n];
  versions[n] = entry ? entry.version : (lock.dependencies || {})[n];
}
process.stdout.write(JSON.stringify(versions, null, 2) + "\n");
' >"$STAGE/versions.json"

rm -rf "$VENDOR"
mv "$STAGE" "$VENDOR"
chmod 755 "$VENDOR"
trap - EXIT
echo "build-assets: front-end bundles ready in $VENDOR"
