// The CLI as `bin/arbor.js` runs it: tsc's output in dist/src bundled into dist/cli (`npm run build`), so
// a command loads a few chunks instead of a hundred modules and the parts of each layer it does not use.
// Worker and helper scripts, which the pools start by path beside their own code, are entries too.
import { defineConfig } from 'rolldown';

// tsc's output directory: ./dist, or where scripts/package-rpm.sh compiled a copy (it must not touch ./dist).
const dist = process.env.ARBOR_BUNDLE_DIST ?? 'dist';

export default defineConfig({
  input: {
    main: `${dist}/src/cli/main.js`,
    'commit-worker': `${dist}/src/repo/commit-worker.js`,
    'link-worker': `${dist}/src/repo/link-worker.js`,
    'store-worker': `${dist}/src/repo/store-worker.js`,
    'fetch-helper': `${dist}/src/repo/fetch-helper.js`,
  },
  platform: 'node',
  // No `// path` comment per module: paths differ with where it is built, and packages must be reproducible.
  experimental: { attachDebugInfo: 'none' },
  // Native addons and what loads files beside itself stay in node_modules; so do the big libraries only
  // some commands load, by dynamic import (OpenPGP, etcd's gRPC client).
  external: [
    /^node:/,
    /^(better-sqlite3|zstd-napi|@napi-rs\/blake-hash|node-liblzma|openpgp|etcd3|unbzip2-stream)(\/|$)/,
  ],
  treeshake: {
    // A command chunk keeps only the modules whose exports it uses: Arbor's modules do nothing when loaded
    // but define things, and Node's own modules need not load for an import nothing uses (node:http for
    // `status`, say).
    moduleSideEffects: [
      { test: /\/src\//, sideEffects: false },
      { test: /^node:/, external: true, sideEffects: false },
    ],
  },
  plugins: [
    {
      // dist/cli's own package.json: the package is `"type": "module"`, and its .js files here are CommonJS.
      name: 'commonjs-scope',
      generateBundle() {
        this.emitFile({ type: 'asset', fileName: 'package.json', source: '{ "type": "commonjs" }\n' });
      },
    },
  ],
  output: {
    dir: `${dist}/cli`,
    // CommonJS, not ES modules: Node 20's ES module loader costs more per module than require() (resolution
    // by URL, asynchronous reads, linking), and the start-up of every command pays it: `arbor status`
    // measured 10-15 % less CPU so.
    format: 'cjs',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    // Error classes name themselves after their class (`new.target.name`): keep names through renames.
    keepNames: true,
  },
});
