/**
 * Offline diarization off the event loop (issue 13: pre-recorded files use the offline
 * `Diarizer.diarize`, which is synchronous and costs RTF ≈ 0.01 — 12 s of CPU for a 20-minute file;
 * run on the main thread it would stall every live session of the process for that long).
 *
 * One lazily started worker thread (src/diarize/offload_worker.ts) runs the default classical
 * diarizer; jobs queue in it in order. The worker is `unref`'d so it never keeps the process alive,
 * and is restarted after a crash. The PCM is transferred, not copied.
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
  const w = new Worker(new URL('./offload_worker.js', import.meta.url));
  w.unref();
  w.on('message', (m: { id: number; turns?: SpeakerTurn[]; error?: string }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
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
