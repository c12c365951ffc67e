/**
 * The diarization worker thread's entry (src/diarize/offload.ts): answers `{id, pcm, sampleRate,
 * opts}` with `{id, turns}` or `{id, error}`, one job at a time, with the default classical diarizer.
 */
import { parentPort } from 'node:worker_threads';
import { createDiarizer } from './index.js';
import type { DiarizeOptions } from './types.js';

const diarizer = createDiarizer();
parentPort?.on('message', (m: { id: number; pcm: Int16Array; sampleRate: number; opts?: DiarizeOptions }) => {
  try {
    parentPort!.postMessage({ id: m.id, turns: diarizer.diarize(m.pcm, m.sampleRate, m.opts) });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
});
