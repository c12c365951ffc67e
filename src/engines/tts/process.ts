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
 * - {@link JobLimiter} caps concurrent synthesis jobs per engine (FIFO queue, abortable wait).
 * - {@link ProcessRunner} runs one job per segment and yields mono int16 PCM: streamed from a WAV
 *   on stdout, or read from an output file after exit (flite cannot write to a socket-pair stdout,
 *   which is what Node gives a child: `open("/dev/stdout")` fails with ENXIO). It keeps one
 *   pre-started ("warm") child per voice in use, which removes process start-up and voice loading
 *   from the first-audio latency.
 */
import { closeSync, constants as fsConstants, existsSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bytesToInt16LE } from '../../audio/pcm.js';
import { parseWavHeader, type WavHeader } from '../../audio/wav.js';
import { VoxgateError } from '../../util/errors.js';
import { sharedSpawnHost, type HostedChild, type SpawnHost } from '../../util/spawn_host.js';
import type { TtsEngineStats } from './types.js';

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

/** The settings a child is started with (they become command-line arguments). */
export interface ChildSettings {
  voice: string;
  speed: number;
}

/** How an engine's command line is driven. */
export interface ProcessSpec {
  /** Human name for errors, e.g. `flite`. */
  name: string;
  /** Executable (looked up on PATH). */
  cmd: string;
  /**
   * Arguments for `settings`. `textPath` is where the child reads the text (a FIFO for a warm
   * child, a regular file otherwise) when `textVia` is `file`; `outPath` is the WAV it writes when
   * `outputVia` is `file`.
   */
  args(settings: ChildSettings, io: { textPath: string | null; outPath: string | null }): string[];
  /** `stdin`: the text is written to stdin, then stdin is closed. `file`: through `textPath`. */
  textVia: 'stdin' | 'file';
  /** `stdout`: a WAV stream on stdout, read while produced. `file`: a WAV at `outPath`, read after exit. */
  outputVia: 'stdout' | 'file';
}

/** Options of a {@link ProcessRunner}. */
export interface ProcessRunnerOptions {
  /** Concurrent synthesis jobs (children producing audio); more jobs queue. */
  maxConcurrentJobs: number;
  /** Kill a job after this long, ms. */
  jobTimeoutMs: number;
  /** Directory for FIFOs and output files (created by `init` when absent: tmpfs `/dev/shm` when present). */
  tmpDir?: string;
  /** Idle pre-started children kept at most (oldest killed first). */
  maxWarm?: number;
  /** An unused pre-started child is killed after this long, ms. */
  warmIdleMs?: number;
  /** Chunk size for PCM read from an output file, samples (bounds memory per step; backpressure granularity). */
  fileChunkSamples?: number;
  /** Where children are started (default: the shared spawner, see util/spawn_host.ts). */
  host?: SpawnHost;
}

type Exit = { code: number | null; sig: NodeJS.Signals | null; err?: Error };

/** A started engine child: warm (waiting for its text) or cold (text given at start). */
interface Launched {
  key: string;
  child: HostedChild;
  exit: Promise<Exit>;
  exited: () => boolean;
  stderr: () => string;
  /** FIFO (warm) or text file (cold), when `textVia` is `file`. */
  textPath: string | null;
  outPath: string | null;
  idleTimer?: NodeJS.Timeout;
}

/**
 * Runs one engine command line per synthesis job, with *warm* children: for every settings key
 * (voice + speed) in use, one child is started in advance and waits for its text (on stdin, or on
 * a FIFO it has already opened), so a job skips process start-up and voice loading. Measured on
 * the project box for a 10-word clause: espeak-ng first audio 10.8 → 2.1 ms, flite whole clause
 * 12.5 → 6.1 ms. Each job that takes a warm child starts its replacement in the background.
 * Aborting a job SIGKILLs its child; a job holds a {@link JobLimiter} slot while it runs.
 */
export class ProcessRunner {
  private readonly limiter: JobLimiter;
  private readonly warm = new Map<string, Launched[]>();
  /** Warm children being started, per key. */
  private readonly starting = new Map<string, number>();
  /** Warm children wanted per key: grows on misses (busy voices), shrinks on idle evictions. */
  private readonly depth = new Map<string, number>();
  /** FIFOs no child is using, ready for the next warm child. */
  private readonly freeFifos: string[] = [];
  private warmCount = 0;
  private seq = 0;
  private dir: string | null;
  private ownDir = false;
  private closed = false;
  private readonly maxWarm: number;
  private readonly warmIdleMs: number;
  private readonly fileChunk: number;
  private readonly host: SpawnHost;

  constructor(
    private readonly spec: ProcessSpec,
    private readonly o: ProcessRunnerOptions,
  ) {
    this.limiter = new JobLimiter(o.maxConcurrentJobs);
    this.dir = o.tmpDir ?? null;
    this.maxWarm = o.maxWarm ?? 32;
    this.warmIdleMs = o.warmIdleMs ?? 60_000;
    this.fileChunk = o.fileChunkSamples ?? 4096;
    this.host = o.host ?? sharedSpawnHost();
  }

  /** Create the private temporary directory (when the spec uses files). */
  async init(): Promise<void> {
    if (this.dir || (this.spec.textVia === 'stdin' && this.spec.outputVia === 'stdout')) return;
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    this.dir = await mkdtemp(path.join(base, `voxgate-${this.spec.name}-`));
    this.ownDir = true;
  }

  /** Counters for stats. */
  stats(): TtsEngineStats {
    return { activeJobs: this.limiter.active, queuedJobs: this.limiter.queued, finishedJobs: this.limiter.released };
  }

  /**
   * Keep enough children for `settings` started or starting (a hint; never throws): at least
   * {@link WARM_DEPTH} so that back-to-back segments of one utterance both find a warm child while
   * the replacement of the first is still starting, more (up to {@link MAX_WARM_PER_KEY}) while jobs
   * for this voice keep missing the pool (many sessions on one voice).
   */
  prepare(settings: ChildSettings): void {
    const key = keyOf(settings);
    if (this.closed) return;
    const want = this.depth.get(key) ?? WARM_DEPTH;
    for (let n = (this.warm.get(key)?.length ?? 0) + (this.starting.get(key) ?? 0); n < want; n++) {
      this.starting.set(key, (this.starting.get(key) ?? 0) + 1);
      void this.startWarm(settings)
        .catch(() => {})
        .finally(() => this.starting.set(key, (this.starting.get(key) ?? 1) - 1));
    }
  }

  /**
   * Synthesise `text` and stream its PCM (see {@link TtsSynthesis}).
   * @param sampleRate the voice's declared rate; the child's WAV header must agree.
   */
  run(settings: ChildSettings, text: string, sampleRate: number, signal?: AbortSignal): { sampleRate: number; [Symbol.asyncIterator](): AsyncIterator<Int16Array> } {
    return { sampleRate, [Symbol.asyncIterator]: () => this.job(settings, text, sampleRate, signal) };
  }

  /** Kill every child (warm and running) and remove the temporary directory. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const list of this.warm.values()) for (const l of list) this.discard(l);
    this.warm.clear();
    this.warmCount = 0;
    if (this.dir && this.ownDir) await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }

  private nextPath(ext: string): string {
    return path.join(this.dir ?? tmpdir(), `${process.pid}-${++this.seq}.${ext}`);
  }

  private launch(settings: ChildSettings, textPath: string | null, outPath: string | null): Launched {
    // Started by the spawner helper: a fork from this (large) process would stall its event loop.
    const child = this.host.spawn(this.spec.cmd, this.spec.args(settings, { textPath, outPath }));
    let stderr = '';
    const exit = child.exit.then((e): Exit => {
      stderr = e.stderr;
      return { code: e.code, sig: e.signal, err: e.error ? new Error(e.error) : undefined };
    });
    if (this.spec.outputVia === 'file') child.stdout.resume();
    return { key: keyOf(settings), child, exit, exited: () => child.exited, stderr: () => stderr, textPath, outPath };
  }

  private async startWarm(settings: ChildSettings): Promise<void> {
    let fifo: string | null = null;
    if (this.spec.textVia === 'file') {
      fifo = this.freeFifos.pop() ?? null;
      if (!fifo) {
        fifo = this.nextPath('fifo');
        const r = await this.host.run('mkfifo', ['-m', '600', fifo]);
        if (r.code !== 0) throw new Error(`mkfifo failed: ${r.error ?? r.stderr}`);
      }
    }
    if (this.closed) return;
    const l = this.launch(settings, fifo, this.spec.outputVia === 'file' ? this.nextPath('wav') : null);
    if (this.closed) {
      this.discard(l);
      return;
    }
    const list = this.warm.get(l.key) ?? [];
    list.push(l);
    this.warm.set(l.key, list);
    this.warmCount++;
    l.idleTimer = setTimeout(() => this.evict(l, true), this.warmIdleMs);
    l.idleTimer.unref();
    void l.exit.then(() => this.evict(l)); // a warm child that dies is forgotten
    while (this.warmCount > this.maxWarm) {
      const oldest = [...this.warm.values()].flat()[0];
      if (!oldest) break;
      this.evict(oldest);
    }
  }

  /** A job found no ready warm child: want one more for this key next time. */
  private missed(settings: ChildSettings): void {
    const key = keyOf(settings);
    this.depth.set(key, Math.min(MAX_WARM_PER_KEY, (this.depth.get(key) ?? WARM_DEPTH) + 1));
  }

  private evict(l: Launched, idle = false): void {
    if (idle) this.depth.set(l.key, Math.max(WARM_DEPTH, (this.depth.get(l.key) ?? WARM_DEPTH) - 1));
    const list = this.warm.get(l.key);
    const i = list?.indexOf(l) ?? -1;
    if (i >= 0) {
      list!.splice(i, 1);
      if (list!.length === 0) this.warm.delete(l.key);
      this.warmCount--;
      this.discard(l);
    }
  }

  private discard(l: Launched): void {
    if (l.idleTimer) clearTimeout(l.idleTimer);
    if (!l.exited()) l.child.kill('SIGKILL');
    if (l.outPath) void rm(l.outPath, { force: true }).catch(() => {});
    const text = l.textPath;
    if (!text) return;
    if (text.endsWith('.fifo') && !this.closed) {
      // FIFOs are reused (creating one costs a process start): free once the reader has exited.
      // Not when the exit was not seen (`err`: the spawner died): a reader that may still hold the
      // FIFO open would take the next job's text (issue 14 item 5) — such a FIFO is removed.
      void l.exit.then((r) => {
        if (!this.closed && !r.err && this.freeFifos.length < 64) this.freeFifos.push(text);
        else void rm(text, { force: true }).catch(() => {});
      });
    } else {
      void rm(text, { force: true }).catch(() => {});
    }
  }

  /** A warm child for `settings`, removed from the pool, or null. Its replacement starts when the job ends. */
  private takeWarm(settings: ChildSettings): Launched | null {
    const key = keyOf(settings);
    const list = this.warm.get(key);
    while (list && list.length > 0) {
      const l = list.shift()!;
      this.warmCount--;
      if (list.length === 0) this.warm.delete(key);
      if (l.idleTimer) clearTimeout(l.idleTimer);
      if (!l.exited()) return l;
      this.discard(l);
    }
    return null;
  }

  /**
   * Hand `text` to a warm child through its FIFO, opened non-blocking: `ready` when written,
   * `not_ready` when the child has not opened its FIFO yet (ENXIO: it is still starting — it goes
   * back to the pool), `failed` otherwise.
   */
  private writeFifo(fifo: string, text: string): 'ready' | 'not_ready' | 'failed' {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > 4096) return 'failed'; // > PIPE_BUF: not atomic on a non-blocking FIFO
    try {
      const fd = openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      try {
        writeSync(fd, bytes);
      } finally {
        closeSync(fd);
      }
      return 'ready';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENXIO' ? 'not_ready' : 'failed';
    }
  }

  /** Put a warm child that was not ready back at the end of its pool. */
  private returnWarm(l: Launched): void {
    if (this.closed || l.exited()) return this.discard(l);
    const list = this.warm.get(l.key) ?? [];
    list.push(l);
    this.warm.set(l.key, list);
    this.warmCount++;
    l.idleTimer = setTimeout(() => this.evict(l, true), this.warmIdleMs);
    l.idleTimer.unref();
  }

  /**
   * One synthesis job. The child's whole output is read as fast as it comes and buffered (a
   * segment is at most a few hundred characters, < 2 MB of PCM), so the concurrency slot is
   * released as soon as the child exits — a consumer that paces or pauses (back-pressure, real-time
   * pacing) never holds a slot other sessions need.
   */
  private async *job(settings: ChildSettings, text: string, sampleRate: number, signal?: AbortSignal): AsyncGenerator<Int16Array, void, undefined> {
    const release = await this.limiter.acquire(signal);
    let l: Launched | null = null;
    let timedOut = false;
    const kill = () => {
      if (l && !l.exited()) l.child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', kill, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, this.o.jobTimeoutMs);
    const name = this.spec.name;
    const queue: Int16Array[] = [];
    let ended = false;
    let failure: Error | null = null;
    let wake: (() => void) | null = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    try {
      if (signal?.aborted) throw abortError();
      l = this.takeWarm(settings);
      if (l && this.spec.textVia === 'stdin') {
        l.child.stdin.end(text);
      } else if (l) {
        const r = this.writeFifo(l.textPath!, text);
        if (r !== 'ready') {
          if (r === 'not_ready') this.returnWarm(l);
          else this.discard(l);
          l = null;
        }
      }
      if (!l) {
        this.missed(settings);
        let textPath: string | null = null;
        if (this.spec.textVia === 'file') {
          textPath = this.nextPath('txt');
          await writeFile(textPath, text, 'utf8');
        }
        l = this.launch(settings, textPath, this.spec.outputVia === 'file' ? this.nextPath('wav') : null);
        if (this.spec.textVia === 'stdin') l.child.stdin.end(text);
      }
      if (signal?.aborted) throw abortError();
      const launched = l;
      const failed = (r: Exit): Error => {
        if (signal?.aborted) return abortError();
        if (timedOut) return new VoxgateError('provider_error', `${name} did not finish within ${this.o.jobTimeoutMs} ms`);
        if (r.err) return new VoxgateError('provider_error', `cannot run ${this.spec.cmd}: ${r.err.message}`);
        return new VoxgateError('provider_error', `${name} failed (exit ${r.code ?? r.sig}): ${launched.stderr().trim().slice(0, 300) || 'no message'}`);
      };
      const reader = new WavPcmReader();
      const take = (bytes: Buffer) => {
        if (failure) return;
        try {
          const pcm = reader.push(bytes);
          if (reader.format && reader.format.sampleRate !== sampleRate) {
            throw new VoxgateError('provider_error', `${name} produced ${reader.format.sampleRate} Hz audio; the voice declares ${sampleRate} Hz`);
          }
          for (let o = 0; o < pcm.length; o += this.fileChunk) queue.push(pcm.subarray(o, o + this.fileChunk));
        } catch (err) {
          failure = err as Error;
          kill();
        }
        notify();
      };
      const stdoutDone = new Promise<void>((resolve) => {
        if (this.spec.outputVia === 'file') return resolve();
        launched.child.stdout.on('data', take);
        launched.child.stdout.once('end', resolve);
        launched.child.stdout.once('error', () => resolve());
      });
      void Promise.all([launched.exit, stdoutDone]).then(async ([r]) => {
        release(); // the process is gone: its slot is free whatever the consumer does next
        if (r.code !== 0) failure ??= failed(r);
        else if (this.spec.outputVia === 'file' && !failure) {
          try {
            take(await readFile(launched.outPath!));
          } catch (err) {
            failure = new VoxgateError('provider_error', `${name} output unreadable: ${(err as Error).message}`);
          }
        }
        if (!failure && !reader.format) failure = new VoxgateError('provider_error', `${name} produced no audio`);
        ended = true;
        notify();
      });
      for (;;) {
        if (signal?.aborted) throw abortError();
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (failure) throw failure;
        if (ended) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
      if (l) this.discard(l);
      if (!l || l.exited()) release(); // otherwise released when the killed child's exit arrives
      // Replace the child for the next segment now that this one no longer competes for the CPU.
      if (!this.closed && !signal?.aborted) this.prepare(settings);
    }
  }
}

/** Warm children kept per voice/speed in use (minimum). */
const WARM_DEPTH = 2;
/** Upper bound of warm children per voice/speed. */
const MAX_WARM_PER_KEY = 8;

function keyOf(s: ChildSettings): string {
  return `${s.voice}\u0000${s.speed}`;
}

/**
 * Run a command to completion and return its stdout (used to probe versions and voice lists).
 * @param anyExit accept a non-zero exit status and return stdout + stderr (e.g. `flite --version` exits 1).
 * @throws Error with `hint` appended when the command is missing or (unless `anyExit`) fails.
 */
export async function runForOutput(cmd: string, args: string[], hint: string, anyExit = false, timeoutMs = 10_000): Promise<string> {
  // Through the spawner like every engine process: no fork of the (large) gateway, and the probe
  // dies with its owner (issue 14 items 5–6).
  const r = await sharedSpawnHost().run(cmd, args, timeoutMs);
  if (r.error) throw new Error(`cannot run ${cmd} (${r.error}); ${hint}`);
  if (r.code === 0) return r.stdout;
  if (anyExit && r.code !== null) return r.stdout + r.stderr;
  throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim().slice(0, 200)}; ${hint}`);
}
