// The console and GraphiQL, built into dist/console and served by the service itself at / and
// /graphiql (src/http/console.route.ts): one process, no CDN, works offline.
import path from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = import.meta.dirname;

export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  // Monaco's language workers (GraphiQL) are split into chunks, which only ES-module workers allow.
  worker: { format: 'es' },
  build: {
    outDir: path.resolve(root, '../dist/console'),
    emptyOutDir: true,
    // GraphiQL's editor (Monaco) is large by nature; it is a page of its own, never loaded by the console.
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      // GraphiQL's modules carry React-compiler directives that bundling drops harmlessly.
      onwarn: (warning, warn) => {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
      input: { console: path.resolve(root, 'index.html'), graphiql: path.resolve(root, 'graphiql.html') },
    },
  },
  server: {
    // `npx vite --config console/vite.config.ts` for a hot-reloading console against a running service.
    proxy: { '/graphql': { target: 'http://localhost:4000', ws: true } },
  },
});
