#!/usr/bin/env node
/**
 * `voxgate` entry point. Sizes the libuv thread pool before anything can touch it (PocketSphinx
 * decoding runs there: one in-flight job per active stream), then loads the CLI.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('./cli.js');
