/**
 * Where voxgate's own files are, at run time (from `src/` or from the compiled `dist/src/`).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null = null;

/**
 * The voxgate package root: the nearest ancestor of this module whose `package.json` has
 * `"name": "voxgate"`.
 * @throws Error when no such directory exists.
 */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (name === 'voxgate') return (cached = dir);
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`voxgate package root not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
