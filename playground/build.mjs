// Builds the playground into dist/: index.html, one JS bundle, one CSS file and Monaco's three
// web workers under dist/assets/, each with a gzip twin, and dist/build-info.json, which records
// a hash of the sources (so a test catches a dist/ older than its sources) and of every output
// (so it catches a dist/ edited by hand). The server embeds dist/ at compile time.
//
// Usage: node build.mjs   (after npm ci; playground/build.sh does both)

import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants as zlib } from 'node:zlib';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'assets');
// Where the server serves dist/assets/ (src/http/playground.rs).
const ASSET_URL = '/playground/assets';

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** The files whose content decides the build: kept in step with tests/playground.rs. */
function sourceFiles() {
  const files = ['build.mjs', 'package.json', 'package-lock.json'];
  const walk = (dir) => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const path = `${dir}/${name}`;
      if (statSync(join(root, path)).isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk('src');
  return files.sort();
}

/** One hash over the sources: a line `<path>\t<sha256 of its bytes>\n` per file, sorted by path. */
function sourcesHash() {
  const listing = sourceFiles()
    .map((path) => `${path}\t${sha256(readFileSync(join(root, path)))}\n`)
    .join('');
  return sha256(listing);
}

const common = {
  bundle: true,
  minify: true,
  legalComments: 'none',
  target: ['es2022'],
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
  write: false,
};

/** Builds and returns { name: contents } for the outputs. */
async function bundle(options) {
  const result = await build({ ...common, ...options });
  return Object.fromEntries(result.outputFiles.map((file) => [relative(assets, file.path), file.contents]));
}

const versioned = (name, contents) => `${ASSET_URL}/${name}?v=${sha256(contents).slice(0, 16)}`;

const outputs = await bundle({
  entryPoints: {
    'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
    'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
    'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
  },
  format: 'iife',
  outdir: assets,
});

const workers = {
  editor: versioned('editor.worker.js', outputs['editor.worker.js']),
  json: versioned('json.worker.js', outputs['json.worker.js']),
  graphql: versioned('graphql.worker.js', outputs['graphql.worker.js']),
};

Object.assign(
  outputs,
  await bundle({
    entryPoints: { playground: join(root, 'src/main.jsx') },
    format: 'iife',
    jsx: 'automatic',
    outdir: assets,
    // Fonts and icons go inline into the CSS: nothing is loaded from anywhere else.
    loader: { '.ttf': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl', '.svg': 'dataurl', '.png': 'dataurl' },
    define: { ...common.define, __PLAYGROUND_WORKERS__: JSON.stringify(workers) },
  }),
);

const names = Object.keys(outputs).sort();
if (names.join() !== 'editor.worker.js,graphql.worker.js,json.worker.js,playground.css,playground.js') {
  throw new Error(`unexpected outputs: ${names.join(', ')} (src/http/playground.rs serves a fixed set)`);
}

const html = `<!doctype html>
<html lang="zh-CN">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>provider-desk · GraphQL Playground</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${versioned('playground.css', outputs['playground.css'])}" />
  </head>
  <body>
    <div id="root"></div>
    <script defer src="${versioned('playground.js', outputs['playground.js'])}"></script>
  </body>
</html>
`;

const files = { 'index.html': Buffer.from(html) };
for (const name of names) files[`assets/${name}`] = outputs[name];

// Every http(s) address in the output, for review: none of them may be loaded at run time (the
// browser test fails on any request that leaves the server). Known ones are documentation links
// inside error messages and licence comments.
const urls = new Set();
for (const [name, contents] of Object.entries(files)) {
  for (const match of Buffer.from(contents).toString('utf8').matchAll(/https?:\/\/[A-Za-z0-9.-]+/g)) {
    urls.add(`${match[0]}  (${name})`);
  }
}

// Reviewed: these appear only in documentation links of error messages, JSON-schema ids, licence
// notes and the SVG namespace; none is requested. A new host fails the build until someone has
// checked that it is not loaded from the page (the browser test checks the requests themselves).
const REVIEWED_HOSTS = [
  'code.visualstudio.com',
  'commonmark.org',
  'en.wikipedia.org',
  'github.com',
  'json-schema.org',
  'microsoft.com',
  'prettier.io',
  'react.dev',
  'www.w3.org',
  'yarnpkg.com',
];
const unreviewed = [...urls].filter((line) => !REVIEWED_HOSTS.includes(line.split(/\/\/| /)[1]));
if (unreviewed.length > 0) {
  console.error(`new hosts in the output, review whether the page loads them:\n  ${unreviewed.join('\n  ')}`);
  process.exit(1);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const info = { sources: sourcesHash(), files: {} };
for (const [name, contents] of Object.entries(files)) {
  writeFileSync(join(dist, name), contents);
  info.files[name] = sha256(contents);
  if (name.startsWith('assets/')) {
    const gz = gzipSync(contents, { level: zlib.Z_BEST_COMPRESSION });
    writeFileSync(join(dist, `${name}.gz`), gz);
    info.files[`${name}.gz`] = sha256(gz);
  }
}
writeFileSync(join(dist, 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);

for (const name of Object.keys(info.files)) {
  const size = statSync(join(dist, name)).size;
  console.log(`${name.padEnd(28)} ${(size / 1024).toFixed(0).padStart(6)} KiB`);
}
console.log(`hosts named in the output (none may be fetched at run time):\n  ${[...urls].sort().join('\n  ')}`);

