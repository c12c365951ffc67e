/**
 * Offline diarization off the event loop (issue 13: pre-recorded files use the offline
 * `Diarizer.diarize`, which is synchronous and costs RTF ≈ 0.01 — 12 s of CPU for a 20-minute file;
 * run on the main thread it would stall every live session of the process for that long).
 *
 * One lazily started worker thread (src/diarize/offload_worker.ts) runs the default classical
 * diarizer; jobs queue in it in order. The worker is referenced only while jobs are pending, so an
 * idle worker never keeps the process alive (its listeners are attached before `unref()`: attaching a
 * `message` listener re-references the port), and is restarted after a crash. The PCM is
 * transferred, not copied.
 */
import { Worker } from 'node:worker_threads';
import type { DiarizeOptions, SpeakerTurn } from './types.js';

interface Pending {
  resolve: (t: SpeakerTurn[]) => void;
  reject: (e: Error) => void;
}

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

function getWorker(): Worker {
  if (worker) return worker;
  // The worker inherits the process's flags, except `--input-type` (valid only for `-e`/stdin input:
  // inherited, it makes the worker refuse its own file).
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
  const w = new Worker(new URL('./offload_worker.js', import.meta.url), { execArgv });
  w.on('message', (m: { id: number; turns?: SpeakerTurn[]; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.turns ?? []);
  });
  w.on('error', (err) => {
    if (worker === w) worker = null;
    failAll(err);
  });
  w.on('exit', (code) => {
    if (worker === w) worker = null;
    failAll(new Error(`the diarization worker exited (${code})`));
  });
  w.unref();
  worker = w;
  return w;
}

/**
 * Diarize a whole recording on the diarization worker thread with the default (classical) diarizer.
 * @param pcm mono 16-bit PCM at `sampleRate` Hz; its buffer is transferred (unusable afterwards).
 * @returns speaker turns in seconds, as `Diarizer.diarize`.
 * @throws Error when the diarizer fails or the worker dies.
 */
export function diarizeOffThread(pcm: Int16Array, sampleRate: number, opts?: DiarizeOptions): Promise<SpeakerTurn[]> {
  const w = getWorker();
  const id = nextId++;
  return new Promise<SpeakerTurn[]>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref(); // a pending job keeps the process alive until it is answered
    // A view of part of a larger buffer cannot be transferred whole: copy it then.
    const own = pcm.byteOffset === 0 && pcm.byteLength === pcm.buffer.byteLength ? pcm : pcm.slice();
    w.postMessage({ id, pcm: own, sampleRate, opts }, [own.buffer as ArrayBuffer]);
  });
}

/** Stop the worker (tests; a process exit needs nothing). */
export async function stopDiarizeWorker(): Promise<void> {
  const w = worker;
  worker = null;
  if (w) await w.terminate();
}
