#!/usr/bin/env node
// The `voxgate` command. CommonJS on purpose: the libuv thread pool — where PocketSphinx decodes,
// one in-flight job per active stream — is sized by UV_THREADPOOL_SIZE when the pool starts, and
// Node's ESM loader starts it before an ES module's first line runs. Setting it here, before any
// ES module is loaded, is what makes it take effect (else Node's default of 4 caps decoding to 4
// streams at a time).
'use strict';
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '16';
import('../dist/src/cli/cli.js').catch((err) => {
  process.stderr.write(`voxgate: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
