// Monaco (the editor inside GraphiQL 5) runs its language services in web workers. They are built
// by build.mjs next to the main bundle and served by the server under /playground/assets/, so
// nothing is fetched from a CDN. Imported first by main.jsx, before any editor is created.

/* global __PLAYGROUND_WORKERS__ */
const WORKERS = __PLAYGROUND_WORKERS__;

globalThis.MonacoEnvironment = {
  getWorker(_workerId, label) {
    const url = label === 'json' ? WORKERS.json : label === 'graphql' ? WORKERS.graphql : WORKERS.editor;
    return new Worker(url, { name: `monaco-${label}` });
  },
};
