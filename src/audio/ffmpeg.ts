/**
 * A streaming audio decoder around Debian's `ffmpeg` as a child process (one per stream):
 *
 *   bytes ──stdin──▶ ffmpeg -f <container> … -i pipe:0 -f wav -ar <target> pipe:1 ──stdout──▶ Int16 PCM
 *
 * shared/spec/engines.md §6–7: ffmpeg decodes Ogg/Opus, WebM/Opus, MP3, FLAC and MP4/M4A (AAC)
 * with one process per stream, always with an explicit `-f <container>` (auto-detection costs
 * 0.4–0.6 s on a live stream). For headerless streams (MP3, ADTS AAC) the probe is cut to the
 * minimum (`-probesize 32 -analyzeduration 0 -fflags nobuffer`: first PCM 1.4 s → 0.14 s); for
 * Ogg and WebM default probing is faster (the flags hold back one packet) — see
 * `FFMPEG_LOW_LATENCY` in decoder.ts and the measurements in `bench/http.ts`.
 * Output is a WAV stream (header with unknown length, then s16le) so the channel count is known
 * even when the source's channels are kept (`outputChannels: 'keep'`, Deepgram multichannel).
 *
 * Lifecycle: the process ends with its owner in every case — {@link FfmpegDecoder.end} closes
 * stdin and waits for exit; {@link FfmpegDecoder.abort} kills it (SIGKILL) at once. A decoder whose
 * owning session vanishes must be aborted. ffmpeg is started by a spawner helper
 * (util/spawn_host.ts), never forked from the gateway: a fork of the large gateway stalls every
 * session's event loop (issue 14 item 6), and the helper arms a parent-death signal so ffmpeg
 * dies with the helper and the helper with the gateway (item 5). If the helper dies mid-stream the
 * decode fails with `internal_error` (an engine failure, not the client's audio).
 *
 * Failure detection: ffmpeg exiting non-zero, or (in `strict` mode, for uploaded files) printing
 * any error at all (`-loglevel error`: truncated or corrupt input), or producing no PCM from
 * {@link NO_OUTPUT_LIMIT_BYTES} of input ({@link NO_OUTPUT_LIMIT_FILE_BYTES} for files), is reported once as a {@link VoxgateError}
 * `invalid_audio` (HTTP 400, close 1008) with ffmpeg's own first message.
 */
import { EventEmitter } from 'node:events';
import { VoxgateError } from '../util/errors.js';
import { sharedSpawnHost, type HostedChild, type SpawnHost } from '../util/spawn_host.js';
import { OggOpusTracker } from './sniff.js';
import { RiffSniffer } from './wav.js';

/** ffmpeg demuxer names (`-f`) the decoder uses. */
export type FfmpegInputFormat = 'ogg' | 'webm' | 'mp3' | 'flac' | 'mov' | 'wav' | 'aac';

/**
 * Input bytes without a single decoded sample after which the input is declared undecodable (live
 * streams). Default probing of a file may read more before its first output (hi-res FLAC, long MP3
 * tags), so uploads use {@link NO_OUTPUT_LIMIT_FILE_BYTES}.
 */
export const NO_OUTPUT_LIMIT_BYTES = 512 * 1024;
/** Linux pipe capacity: bytes ffmpeg may not have read yet even when Node's queue is empty. */
const PIPE_BYTES = 64 * 1024;
/** The same limit for uploaded files (`strict` decoders). */
export const NO_OUTPUT_LIMIT_FILE_BYTES = 8 * 1024 * 1024;
/** Quiet period (ms) after which {@link FfmpegDecoder.flush} considers ffmpeg caught up. */
export const FLUSH_QUIET_MS = 30;
/** Longest {@link FfmpegDecoder.flush} wait, ms (a container may hold back a partial page). */
export const FLUSH_MAX_MS = 300;
/** Bytes of ffmpeg stderr kept for error messages. */
const STDERR_KEEP = 4096;

/** Options of an {@link FfmpegDecoder}. */
export interface FfmpegDecoderOptions {
  /** Demuxer (`-f`); always explicit — auto-probing costs 0.4–2 s on a live stream. */
  format: FfmpegInputFormat;
  /** Read from stdin (`pipe`, the default) or from a file that is complete on disk. */
  inputFile?: string;
  /** Output rate, Hz (ffmpeg's resampler converts). */
  targetRate: number;
  /** 1 = downmix to mono; `'keep'` = the source's channels, interleaved. */
  outputChannels: 1 | 'keep';
  /** Minimal probing (`-probesize 32 -analyzeduration 0 -fflags nobuffer`); faster for headerless streams only (see `FFMPEG_LOW_LATENCY`). Default true. */
  lowLatency?: boolean;
  /** Any ffmpeg error message (truncated/corrupt input) fails the decode (uploaded files). Default false. */
  strict?: boolean;
  /** ffmpeg binary; default `ffmpeg` on PATH (Debian package `ffmpeg`). */
  binary?: string;
  /** Spawner that runs ffmpeg; default {@link sharedSpawnHost}. */
  host?: SpawnHost;
}

/** Event map of an {@link FfmpegDecoder}. */
export interface FfmpegDecoderEvents {
  /** Interleaved signed 16-bit PCM at `targetRate` (`channels` per frame; never empty). */
  pcm: [Int16Array];
  /** Output format, emitted once before the first `pcm`. */
  format: [{ channels: number; sampleRate: number }];
  /** The decode failed (`invalid_audio`, or `internal_error` when ffmpeg cannot run). Emitted at most once. */
  error: [VoxgateError];
  /** stdin accepts more after {@link FfmpegDecoder.write} returned false. */
  drain: [];
}

/** Build the ffmpeg argument list (exported for tests and the benchmark). */
export function ffmpegArgs(o: FfmpegDecoderOptions): string[] {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', o.format];
  if (o.lowLatency ?? true) args.push('-probesize', '32', '-analyzeduration', '0', '-fflags', 'nobuffer');
  args.push('-i', o.inputFile ?? 'pipe:0', '-vn', '-map_metadata', '-1', '-fflags', '+bitexact');
  if (o.outputChannels === 1) args.push('-ac', '1');
  args.push('-ar', String(o.targetRate), '-c:a', 'pcm_s16le', '-f', 'wav', 'pipe:1');
  return args;
}

/**
 * One ffmpeg child decoding one stream. Create, `write()` bytes, then `end()` (all PCM delivered)
 * or `abort()`. An `error` listener is required (EventEmitter semantics).
 */
export class FfmpegDecoder extends EventEmitter<FfmpegDecoderEvents> {
  private readonly proc: HostedChild;
  private readonly riff = new RiffSniffer();
  private carry: Uint8Array = new Uint8Array(0);
  private frameBytes = 0;
  private outChannels = 0;
  private stderr = '';
  private failed: VoxgateError | null = null;
  private aborted = false;
  private exited = false;
  private readonly exitPromise: Promise<void>;
  private lastOutputAt = 0;
  private lastWriteAt = 0;
  private bytesIn = 0;
  private samplesOut = 0;
  /** Ogg input: how much audio the complete pages written hold (makes `flush` exact for Ogg/Opus). */
  private readonly ogg: OggOpusTracker | null;

  constructor(private readonly o: FfmpegDecoderOptions) {
    super();
    this.ogg = o.format === 'ogg' && !o.inputFile ? new OggOpusTracker() : null;
    this.proc = (o.host ?? sharedSpawnHost()).spawn(o.binary ?? 'ffmpeg', ffmpegArgs(o));
    this.proc.stdout.on('data', (d: Buffer) => this.onStdout(d));
    this.proc.on('stderr', (d: string) => {
      if (this.stderr.length < STDERR_KEEP) this.stderr += d.slice(0, STDERR_KEEP - this.stderr.length);
    });
    this.proc.stdin.on('error', () => {}); // end() after a failure: the exit status reports it
    this.proc.stdin.on('drain', () => {
      this.checkStalled();
      if (!this.failed) this.emit('drain');
    });
    const stdoutDone = new Promise<void>((resolve) => this.proc.stdout.once('end', resolve).once('error', () => resolve()));
    this.exitPromise = Promise.all([this.proc.exit, stdoutDone]).then(([e]) => {
      this.exited = true;
      if (e.error) {
        this.fail(
          new VoxgateError(
            'internal_error',
            /ENOENT/.test(e.error) ? 'ffmpeg is not installed (Debian package "ffmpeg"); compressed audio cannot be decoded' : `the ffmpeg decoder process was lost: ${e.error}`,
          ),
        );
      } else {
        this.onExit(e.code, e.signal);
      }
    });
  }

  /** OS process id of the ffmpeg child (tests check it is gone); undefined until the spawner has started it. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Output channels per frame, known once the `format` event fired (0 before). */
  get channels(): number {
    return this.outChannels;
  }

  /** Bytes written so far. */
  get inputBytes(): number {
    return this.bytesIn;
  }

  /** True while stdin's buffer is above its high-water mark (wait for `drain`). */
  get needsDrain(): boolean {
    return this.proc.stdin.writableNeedDrain;
  }

  /** The failure, once one happened. */
  get error(): VoxgateError | null {
    return this.failed;
  }

  /**
   * Feed encoded bytes (any split). Ignored after `end()`, `abort()` or a failure.
   * @returns false when the caller should wait for `drain` before writing more (backpressure).
   */
  write(bytes: Uint8Array): boolean {
    if (this.failed || this.aborted || this.proc.stdin.writableEnded || bytes.length === 0) return true;
    this.bytesIn += bytes.length;
    this.lastWriteAt = Date.now();
    this.ogg?.push(bytes);
    const ok = this.proc.stdin.write(bytes);
    this.checkStalled();
    return ok;
  }

  /**
   * Barrier for `finalize`. Ogg/Opus: exact — resolves once the PCM covers every complete Ogg page
   * written (granule position − pre-skip; a page still incomplete at the client stays behind).
   * Other containers: best effort — resolves once stdin is drained, ffmpeg has produced output for
   * the stream (start-up and probing are over) and then nothing for {@link FLUSH_QUIET_MS}.
   * Either way at most {@link FLUSH_MAX_MS} after the call.
   */
  flush(): Promise<void> {
    const t0 = Date.now();
    const target = this.ogg?.completeSeconds ?? null;
    return new Promise((resolve) => {
      const check = (): void => {
        const now = Date.now();
        let busy: boolean;
        if (target !== null) {
          // 20 ms of slack for the resampler's look-ahead.
          busy = this.samplesOut / Math.max(1, this.outChannels) / this.o.targetRate < target - 0.02;
        } else {
          const starting = this.bytesIn > 0 && this.samplesOut === 0;
          busy = starting || this.proc.stdin.writableLength > 0 || now - Math.max(this.lastOutputAt, this.lastWriteAt) < FLUSH_QUIET_MS;
        }
        if (!busy || this.exited || this.failed || this.aborted || now - t0 >= FLUSH_MAX_MS) resolve();
        else setTimeout(check, 2);
      };
      check();
    });
  }

  /**
   * End of input: close stdin and wait until ffmpeg has exited and every sample was emitted.
   * @throws VoxgateError (rejects) when the decode failed — the same error the `error` event carried.
   */
  async end(): Promise<void> {
    if (!this.aborted && !this.proc.stdin.writableEnded) this.proc.stdin.end();
    await this.exitPromise;
    if (this.failed) throw this.failed;
  }

  /** Kill ffmpeg now (SIGKILL) and drop pending output. Idempotent; emits nothing. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    if (!this.exited) this.proc.kill('SIGKILL');
  }

  /** Resolves when the process has exited (for tests and shutdown). */
  whenExited(): Promise<void> {
    return this.exitPromise;
  }

  /** Fail when ffmpeg has been handed many bytes and produced no sample (checked on write and drain). */
  private checkStalled(): void {
    if (this.samplesOut > 0 || this.failed || this.aborted || this.o.inputFile) return;
    // Bytes ffmpeg has been handed (not those still queued in Node), less what a pipe can hold unread.
    const delivered = this.bytesIn - this.proc.stdin.writableLength - PIPE_BYTES;
    if (delivered > (this.o.strict ? NO_OUTPUT_LIMIT_FILE_BYTES : NO_OUTPUT_LIMIT_BYTES)) {
      this.fail(new VoxgateError('invalid_audio', `no audio could be decoded from the first ${delivered} bytes (${this.o.format}); ${this.firstStderrLine() || 'the data is not valid audio'}`));
    }
  }

  private onStdout(d: Buffer): void {
    if (this.aborted || this.failed) return;
    let bytes: Uint8Array = d;
    if (this.frameBytes === 0) {
      let r;
      try {
        r = this.riff.push(d);
      } catch (err) {
        this.fail(new VoxgateError('internal_error', `ffmpeg produced unreadable output: ${(err as Error).message}`));
        return;
      }
      if ('pending' in r) return;
      const h = r.header;
      if (!h || h.format !== 'pcm_s16le') {
        this.fail(new VoxgateError('internal_error', 'ffmpeg did not produce 16-bit WAV output'));
        return;
      }
      this.outChannels = h.channels;
      this.frameBytes = 2 * h.channels;
      this.emit('format', { channels: h.channels, sampleRate: h.sampleRate });
      bytes = r.audio;
    }
    if (this.carry.length > 0) {
      const joined = new Uint8Array(this.carry.length + bytes.length);
      joined.set(this.carry);
      joined.set(bytes, this.carry.length);
      bytes = joined;
    }
    const whole = bytes.length - (bytes.length % this.frameBytes);
    this.carry = bytes.slice(whole);
    if (whole === 0) return;
    // Copy into an aligned buffer: Buffer slices may start at odd offsets.
    const pcm = new Int16Array(whole / 2);
    new Uint8Array(pcm.buffer).set(bytes.subarray(0, whole));
    this.samplesOut += pcm.length;
    this.lastOutputAt = Date.now();
    this.emit('pcm', pcm);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.aborted || this.failed) return;
    const msg = this.firstStderrLine();
    if (code === null && signal) {
      // Killed from outside (not by abort/fail): an engine failure, not the client's audio.
      this.fail(new VoxgateError('internal_error', `the ffmpeg decoder process was killed (${signal})`));
    } else if (code !== 0) {
      this.fail(new VoxgateError('invalid_audio', `audio could not be decoded as ${this.o.format}: ${msg || (signal ? `ffmpeg killed by ${signal}` : `ffmpeg exit code ${code}`)}`));
    } else if (this.o.strict && msg) {
      this.fail(new VoxgateError('invalid_audio', `audio is truncated or corrupt (${this.o.format}): ${msg}`));
    } else if (this.samplesOut === 0 && (this.o.inputFile !== undefined || this.bytesIn > 0)) {
      this.fail(new VoxgateError('invalid_audio', `no audio could be decoded (${this.o.format})${msg ? `: ${msg}` : ''}`));
    }
  }

  private firstStderrLine(): string {
    const lines = this.stderr
      .split('\n')
      .map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, '').trim())
      .filter((l) => l && !/Broken pipe/.test(l));
    return lines[0]?.slice(0, 200) ?? '';
  }

  private fail(e: VoxgateError): void {
    if (this.failed || this.aborted) return;
    this.failed = e;
    if (!this.exited) this.proc.kill('SIGKILL');
    this.emit('error', e);
  }
}
