/**
 * Running a TTS command-line engine (Debian `flite`, `espeak-ng`) as a child process per segment,
 * shared by the engines in this folder (shared/spec/engines.md §5).
 *
 * Why child processes and not the in-process WASM build of espeak-ng: measured on the project box
 * (20-word sentence, median of 9, Node 20, from `spawn` to the first 2 KB of audio):
 * `espeak-ng --stdout` 12.6 ms (whole sentence 22.5 ms), `flite -voice kal16` 19.5 ms (whole
 * sentence; 13.9 ms for a 10-word clause), `@echogarden/espeak-ng-emscripten` 0.7–4.6 ms warm but
 * 236 ms initialisation, 405 ms first call, ~90 MB RSS, and every synthesis runs *synchronously on
 * the event loop* (24–31 ms per sentence) — blocking every other session. A child process costs a
 * few ms more, never blocks the loop, is killed instantly (SIGKILL) on barge-in, cannot crash the
 * gateway, and keeps the GPL-3.0 espeak-ng outside the gateway's process.
 *
 * - {@link JobLimiter} caps concurrent child processes per engine (FIFO queue, abortable wait).
 * - {@link childPcm} runs one job and yields mono int16 PCM: streamed from a WAV on stdout, or read
 *   from an output file after exit (flite cannot write to a socket-pair stdout, which is what Node
 *   gives a child: `open("/dev/stdout")` fails with ENXIO).
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { bytesToInt16LE } from '../../audio/pcm.js';
import { parseWavHeader, type WavHeader } from '../../audio/wav.js';
import { VoxgateError } from '../../util/errors.js';

/** An `AbortError` like the one `fetch` and `stream` raise, so callers can tell aborts from failures. */
export function abortError(): Error {
  const e = new Error('synthesis aborted');
  e.name = 'AbortError';
  return e;
}

/**
 * A counting semaphore with a FIFO queue: at most `max` jobs hold a slot at once.
 * Used to bound the number of engine child processes (fork pressure on a small box).
 */
export class JobLimiter {
  private running = 0;
  private finished = 0;
  private readonly waiters: { grant: () => void; signal?: AbortSignal; onAbort: () => void }[] = [];

  /** @param max concurrent slots (positive integer). */
  constructor(readonly max: number) {}

  /** Jobs holding a slot. */
  get active(): number {
    return this.running;
  }
  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.waiters.length;
  }
  /** Slots released since construction. */
  get released(): number {
    return this.finished;
  }

  /**
   * Wait for a slot.
   * @returns a release function (idempotent) that must be called when the job ends.
   * @throws AbortError when `signal` aborts while waiting (no slot is then held).
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw abortError();
    if (this.running < this.max) {
      this.running++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const w = {
        grant: () => {
          signal?.removeEventListener('abort', w.onAbort);
          resolve();
        },
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortError());
        },
      };
      signal?.addEventListener('abort', w.onAbort, { once: true });
      this.waiters.push(w);
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.finished++;
      const next = this.waiters.shift();
      if (next) next.grant(); // the slot passes directly to the next waiter
      else this.running--;
    };
  }
}

/**
 * Incremental WAV → PCM reader for an engine's stdout: parses the RIFF header (any chunk layout our
 * `parseWavHeader` accepts), then returns whole int16 samples, carrying an odd trailing byte.
 * Only mono 16-bit PCM is accepted (what both Debian engines write).
 */
export class WavPcmReader {
  private head: Buffer | null = Buffer.alloc(0);
  private header: WavHeader | null = null;
  private carry: Buffer | null = null;

  /** The parsed header once known. */
  get format(): WavHeader | null {
    return this.header;
  }

  /**
   * Feed bytes.
   * @returns samples completed by these bytes (possibly empty).
   * @throws VoxgateError `provider_error` when the bytes are not a mono 16-bit PCM WAV stream.
   */
  push(bytes: Buffer): Int16Array {
    let data = bytes;
    if (this.head) {
      this.head = Buffer.concat([this.head, bytes]);
      const h = parseWavHeader(this.head);
      if (h.kind === 'need_more') {
        if (this.head.length > 65536) throw new VoxgateError('provider_error', 'engine output has no WAV data chunk');
        return new Int16Array(0);
      }
      if (h.kind !== 'wav') throw new VoxgateError('provider_error', `engine output is not a WAV stream (${h.kind === 'invalid' ? h.reason : 'no RIFF header'})`);
      if (h.format !== 'pcm_s16le' || h.channels !== 1) {
        throw new VoxgateError('provider_error', `engine output is ${h.format} with ${h.channels} channels; expected mono 16-bit PCM`);
      }
      this.header = h;
      data = this.head.subarray(h.dataOffset);
      this.head = null;
    }
    if (this.carry) {
      data = Buffer.concat([this.carry, data]);
      this.carry = null;
    }
    if (data.length % 2 === 1) {
      this.carry = Buffer.from(data.subarray(data.length - 1));
      data = data.subarray(0, data.length - 1);
    }
    return bytesToInt16LE(data);
  }
}

/** One child-process synthesis job. */
export interface ChildJob {
  /** Executable (looked up on PATH). */
  cmd: string;
  args: string[];
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
  /**
   * When set, the engine writes a WAV file here and it is read after a clean exit (then deleted);
   * otherwise a WAV stream is read from stdout as it is produced.
   */
  outFile?: string;
  /** Kill the child and fail after this long, ms. */
  timeoutMs: number;
  /** Human name for error messages, e.g. `flite`. */
  name: string;
}

/**
 * Run one engine child and yield its audio as mono int16 PCM chunks.
 * Holds a {@link JobLimiter} slot for the child's lifetime. Breaking out of the iteration or
 * aborting `signal` SIGKILLs the child at once.
 * @returns an async generator; the first element is the sample rate (number), then PCM chunks.
 * @throws (while iterating) VoxgateError `provider_error` when the child cannot start, exits
 *   non-zero, times out or writes something that is not mono 16-bit WAV; AbortError on abort.
 */
export async function* childPcm(job: ChildJob, limiter: JobLimiter, signal?: AbortSignal): AsyncGenerator<number | Int16Array, void, undefined> {
  const release = await limiter.acquire(signal);
  let child: ReturnType<typeof spawn> | null = null;
  let exited = false;
  let timedOut = false;
  const kill = () => {
    if (child && !exited) child.kill('SIGKILL');
  };
  signal?.addEventListener('abort', kill, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, job.timeoutMs);
  try {
    if (signal?.aborted) throw abortError();
    child = spawn(job.cmd, job.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (stderr.length < 2000) stderr += d;
    });
    const exit = new Promise<{ code: number | null; sig: NodeJS.Signals | null; err?: Error }>((resolve) => {
      child!.once('error', (err) => {
        exited = true;
        resolve({ code: null, sig: null, err });
      });
      child!.once('close', (code, sig) => {
        exited = true;
        resolve({ code, sig });
      });
    });
    child.stdin!.on('error', () => {}); // EPIPE when the child dies early: reported through `exit`
    child.stdin!.end(job.stdin ?? '');
    const failure = (r: { code: number | null; sig: NodeJS.Signals | null; err?: Error }): Error => {
      if (signal?.aborted) return abortError();
      if (timedOut) return new VoxgateError('provider_error', `${job.name} did not finish within ${job.timeoutMs} ms`);
      if (r.err) return new VoxgateError('provider_error', `cannot run ${job.cmd}: ${r.err.message}`);
      return new VoxgateError('provider_error', `${job.name} failed (exit ${r.code ?? r.sig}): ${stderr.trim().slice(0, 300) || 'no message'}`);
    };
    if (job.outFile) {
      child.stdout!.resume();
      const r = await exit;
      if (r.code !== 0) throw failure(r);
      const bytes = await readFile(job.outFile);
      const reader = new WavPcmReader();
      const pcm = reader.push(bytes);
      if (!reader.format) throw new VoxgateError('provider_error', `${job.name} wrote an incomplete WAV file`);
      yield reader.format.sampleRate;
      if (pcm.length > 0) yield pcm;
      return;
    }
    const reader = new WavPcmReader();
    let announced = false;
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      const pcm = reader.push(chunk);
      if (!announced && reader.format) {
        announced = true;
        yield reader.format.sampleRate;
      }
      if (pcm.length > 0) yield pcm;
    }
    const r = await exit;
    if (r.code !== 0) throw failure(r);
    if (!announced) throw new VoxgateError('provider_error', `${job.name} produced no audio`);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', kill);
    kill();
    release();
    if (job.outFile) await rm(job.outFile, { force: true }).catch(() => {});
  }
}

/**
 * Adapt {@link childPcm} to a {@link import('./types.js').TtsSynthesis}: the sample rate is known up
 * front (the voice's declared rate) and checked against what the engine actually wrote.
 */
export function synthesisFromChild(job: ChildJob, limiter: JobLimiter, sampleRate: number, signal?: AbortSignal): { sampleRate: number; [Symbol.asyncIterator](): AsyncIterator<Int16Array> } {
  return {
    sampleRate,
    async *[Symbol.asyncIterator]() {
      const gen = childPcm(job, limiter, signal);
      try {
        for await (const item of gen) {
          if (typeof item === 'number') {
            if (item !== sampleRate) throw new VoxgateError('provider_error', `${job.name} produced ${item} Hz audio; the voice declares ${sampleRate} Hz`);
            continue;
          }
          yield item;
        }
      } finally {
        await gen.return(undefined);
      }
    },
  };
}

/**
 * Run a command to completion and return its stdout (used to probe versions and voice lists).
 * @param anyExit accept a non-zero exit status and return stdout + stderr (e.g. `flite --version` exits 1).
 * @throws Error with `hint` appended when the command is missing or (unless `anyExit`) fails.
 */
export function runForOutput(cmd: string, args: string[], hint: string, anyExit = false, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd} (${e.message}); ${hint}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else if (anyExit && code !== null) resolve(out + err);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().slice(0, 200)}; ${hint}`));
    });
  });
}
