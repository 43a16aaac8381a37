#!/usr/bin/env bash
# The process owners' modeler: bpmn-js's Modeler, its properties panel and casemgr's own
# provider for the spiffworkflow namespace (casemgr/static/src/modeler/), bundled by esbuild
# into casemgr/static/build/modeler/ (git-ignored). The provider must share one preact
# with the panel, which the ready UMD build does not export, hence the bundler.
#
# Also dmn-js for the decision-table editor, built for production (build.cjs says why).
#
# Needs `npm ci` done (scripts/build-assets.sh does it) with esbuild among the
# devDependencies. Idempotent: builds into a staging folder and swaps it in whole.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SRC="casemgr/static/src/modeler"
OUT="casemgr/static/build/modeler"
# ESBUILD_NODE_PATH: where to find the esbuild package when it is not in node_modules.
if [ -n "${ESBUILD_NODE_PATH:-}" ]; then
  export NODE_PATH="$ESBUILD_NODE_PATH"
fi

if ! command -v node >/dev/null 2>&1; then
  echo "build-modeler: node is not installed (Node.js 20: apt-get install nodejs npm)" >&2
  exit 1
fi
if ! node -e 'require.resolve("esbuild")' >/dev/null 2>&1; then
  echo "build-modeler: the esbuild package is missing; add it to package.json's devDependencies and run make setup" >&2
  exit 1
fi
for package in bpmn-js bpmn-js-properties-panel @bpmn-io/properties-panel dmn-js; do
  if [ ! -d "node_modules/$package" ]; then
    echo "build-modeler: node_modules/$package is missing; run scripts/build-assets.sh first" >&2
    exit 1
  fi
done

mkdir -p "$(dirname "$OUT")"
STAGE="$(mktemp -d "${OUT}.staging.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

node "$SRC/build.cjs" "$SRC" "$STAGE"

rm -rf "$OUT"
mv "$STAGE" "$OUT"
chmod 755 "$OUT"
trap - EXIT
echo "build-modeler: modeler bundle ready in $OUT"
