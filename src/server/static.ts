/**
 * Serves the browser playground (issue #5) from the gateway at `/`: the prebuilt Vite output in
 * `<package root>/dist/web/` (built by `npm run build`; nothing is built at run time).
 *
 * Caching: files under `/assets/` carry a content hash in their name, so they are
 * `Cache-Control: public, max-age=31536000, immutable`; everything else (`index.html`) is
 * `no-cache` (revalidated on every load, so a new build is picked up at once).
 *
 * Only the files present at start-up get routes (`wildcard: false`): the plugin adds no catch-all
 * GET route that could shadow another route. When the playground was not built, `GET /` answers
 * 503 with a message saying how to build it.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../util/paths.js';

/** `Cache-Control` of content-hashed assets (1 year, never revalidated). */
export const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';
/** `Cache-Control` of `index.html` and other unhashed files. */
export const NO_CACHE = 'no-cache';

/** Directory of the built playground: `<package root>/dist/web`. */
export function playgroundDir(): string {
  return path.join(packageRoot(), 'dist', 'web');
}

/** Options of {@link playgroundPlugin}. */
export interface PlaygroundOptions {
  /** Directory holding `index.html` and `assets/` (default {@link playgroundDir}). */
  root?: string;
}

/**
 * Fastify plugin registering the playground routes (`GET /`, `GET /index.html`, `GET /assets/*`).
 * Use as `app.register(playgroundPlugin)`.
 */
export async function playgroundPlugin(app: FastifyInstance, opts: PlaygroundOptions = {}): Promise<void> {
  const root = opts.root ?? playgroundDir();
  if (!existsSync(path.join(root, 'index.html'))) {
    app.log.warn({ root }, 'playground not built: GET / will answer 503');
    app.get('/', async (_req, reply) =>
      reply.code(503).type('text/plain; charset=utf-8').send('The voxgate playground is not built. Run `npm run build` (or scripts/setup.sh) and restart.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    decorateReply: false,
    dotfiles: 'ignore',
    index: ['index.html'],
    cacheControl: false,
    setHeaders: (reply, filePath) => {
      const rel = path.relative(root, filePath).split(path.sep).join('/');
      reply.header('Cache-Control', rel.startsWith('assets/') ? IMMUTABLE_CACHE : NO_CACHE);
      reply.header('X-Content-Type-Options', 'nosniff');
    },
  });
}
