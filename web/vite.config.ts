// Vite build of the browser playground (issue #5): web/ → dist/web/, served by the gateway at `/`
// (src/server/static.ts). Built by `npm run build`; nothing is built when the server runs.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  // The page imports the project's own client SDK and resampler from ../src.
  server: { fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // Content-hashed names under assets/ are served as immutable.
    assetsDir: 'assets',
    sourcemap: true,
  },
  worker: { format: 'es' },
});
