/*
 * Bundles the process owners' editors with esbuild (called by scripts/build-modeler.sh):
 *
 *   modeler.js  bpmn-js Modeler + properties panel + casemgr's spiffworkflow provider
 *   dmn.js      dmn-js Modeler, built for production (the dist bundle ships Inferno's
 *               development build, which logs an error on every page)
 *
 * One adjustment to a dependency, made here at build time and checked: the properties
 * panel creates its two containers from HTML with style attributes, which the app's
 * Content-Security-Policy (style-src 'self') refuses; the same styles come from
 * static/css/modeler.css instead. The build fails if the markup is no longer there, so an
 * upgrade cannot silently undo it.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const [srcDir, outDir] = process.argv.slice(2);

const PANEL_MARKUP = [
  [
    '<div style="height: 100%" tabindex="-1" class="bio-properties-panel-container"></div>',
    '<div tabindex="-1" class="bio-properties-panel-container"></div>',
  ],
  [
    '<div style="flex: none; height: auto" class="bio-properties-panel bio-theme-parent bio-properties-panel-header-container"></div>',
    '<div class="bio-properties-panel bio-theme-parent bio-properties-panel-header-container"></div>',
  ],
];

const panelWithoutInlineStyles = {
  name: 'panel-without-inline-styles',
  setup(build) {
    build.onLoad({ filter: /bpmn-js-properties-panel[\\/]dist[\\/]index\.esm\.js$/ }, async (args) => {
      let contents = await fs.promises.readFile(args.path, 'utf8');
      for (const [from, to] of PANEL_MARKUP) {
        if (!contents.includes(from)) {
          throw new Error(`bpmn-js-properties-panel no longer has the markup ${from}; check modeler.css`);
        }
        contents = contents.split(from).join(to);
      }
      return { contents, loader: 'js' };
    });
  },
};

const common = {
  bundle: true,
  format: 'iife',
  target: 'es2019',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

Promise.all([
  esbuild.build({
    ...common,
    entryPoints: [path.join(srcDir, 'index.js')],
    outfile: path.join(outDir, 'modeler.js'),
    plugins: [panelWithoutInlineStyles],
  }),
  esbuild.build({
    ...common,
    entryPoints: [path.join(srcDir, 'dmn.js')],
    outfile: path.join(outDir, 'dmn.js'),
  }),
]).catch((error) => {
  console.error(`build-modeler: ${error.message}`);
  process.exit(1);
});
