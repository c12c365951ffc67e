/**
 * One decoder abstraction for every way audio reaches voxgate — WebSocket sessions and HTTP uploads
 * alike: bytes in, interleaved Int16 PCM at the engine's rate out.
 *
 * | encoding | backend | notes |
 * |---|---|---|
 * | `linear16`, `mulaw`, `alaw` | {@link AudioInput} (synchronous, in-process) | a RIFF header at the start is honoured |
 * | `opus` | ffmpeg | Ogg/Opus or WebM/Opus, told apart by the first bytes |
 * | `ogg-opus` (`ogg_opus`, `ogg`) | ffmpeg `-f ogg` | |
 * | `webm` | ffmpeg `-f webm` | Matroska too |
 * | `mp3` | `stream` mode: mpg123 WASM (lowest latency); `file` mode: ffmpeg | |
 * | `flac` | ffmpeg `-f flac` | ffmpeg's FLAC parser holds ~10 frames (~1 s) before the first PCM |
 * | `aac`, `mp4`, `m4a` | ffmpeg `-f mov` / `-f aac` | an MP4 whose index (`moov`) follows the audio is spooled to a temp file first |
 * | `auto` | by the first bytes | WAV, Ogg, WebM, MP3, FLAC, MP4/M4A, ADTS AAC |
 *
 * Compressed streams are checked against their declared container from the first 4–12 bytes, so
 * random bytes declared as `opus` fail at once with `invalid_audio` (HTTP 400, close 1008;
 * Deepgram `DATA-0000`) rather than leaving a demuxer searching until end of stream.
 *
 * Spec: shared/spec/protocols.md §1.3 (`config.encoding`), §1.7 (HTTP file types), §2.2 (Deepgram
 * `encoding`, omitted for containerised audio), §4.1 (smallest.ai `ogg_opus`), §5 (undecodable
 * audio → 1008); shared/spec/engines.md §6 (codec table).
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { VoxgateError } from '../util/errors.js';
import { FfmpegDecoder, type FfmpegInputFormat } from './ffmpeg.js';
import { AudioInput, STREAM_SAMPLE_RATES } from './input.js';
import { Mp3StreamDecoder } from './mp3.js';
import { mp4Layout, sniffContainer, type ContainerKind } from './sniff.js';
import { parseWavHeader } from './wav.js';

/** Canonical encodings the decoder accepts. */
export const DECODER_ENCODINGS = ['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac', 'mp4', 'auto'] as const;
export type DecoderEncoding = (typeof DECODER_ENCODINGS)[number];
/** Raw (headerless) encodings: need `sampleRate` (and `channels`). */
export const RAW_ENCODINGS = ['linear16', 'mulaw', 'alaw'] as const;
/** Compressed encodings accepted on streaming routes (`init.config.encoding`, Deepgram `encoding`). */
export const COMPRESSED_STREAM_ENCODINGS = ['opus', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac', 'mp4'] as const;

const ALIASES: Record<string, DecoderEncoding> = {
  ogg_opus: 'ogg-opus',
  ogg: 'ogg-opus',
  'webm-opus': 'webm',
  webm_opus: 'webm',
  m4a: 'mp4',
  pcm_s16le: 'linear16',
  pcm: 'linear16',
  ulaw: 'mulaw',
};

/**
 * Canonical name of an encoding as a client wrote it (case-insensitive; `ogg_opus` → `ogg-opus`,
 * `m4a` → `mp4` …), or null when voxgate cannot decode it.
 */
export function normalizeEncoding(name: string): DecoderEncoding | null {
  const n = name.trim().toLowerCase();
  if ((DECODER_ENCODINGS as readonly string[]).includes(n)) return n as DecoderEncoding;
  return ALIASES[n] ?? null;
}

/** True for encodings decoded synchronously in-process ({@link RAW_ENCODINGS}). */
export function isRawEncoding(e: DecoderEncoding): e is (typeof RAW_ENCODINGS)[number] {
  return (RAW_ENCODINGS as readonly string[]).includes(e);
}

/** Options of {@link createPcmDecoder}. */
export interface PcmDecoderOptions {
  /** Any accepted spelling (see {@link normalizeEncoding}). */
  encoding: string;
  /** Hz of raw input (required for raw encodings; ignored for containers, which carry their rate). */
  sampleRate?: number;
  /** Interleaved channels of raw input (default 1; ignored for containers). */
  channels?: number;
  /** Hz of the PCM produced (the engine's input rate). */
  targetRate: number;
  /** 1 = downmix to mono; `'keep'` = keep the source's channels interleaved (Deepgram multichannel). */
  outputChannels: 1 | 'keep';
  /**
   * `stream` (default): a live session — lowest first-PCM latency (ffmpeg spawned before the first
   * byte, minimal probing; MP3 in-process), a corrupt packet is tolerated. `file`: an upload —
   * decoded for throughput, and truncated or corrupt data fails the decode.
   */
  mode?: 'stream' | 'file';
}

/** Event map of a {@link PcmDecoder}. */
export interface PcmDecoderEvents {
  /** Interleaved signed 16-bit PCM at `targetRate`, {@link PcmDecoder.channels} per frame; never empty. */
  pcm: [Int16Array];
  /** The output format became known (before the first `pcm`). */
  format: [{ channels: number; sampleRate: number }];
  /** The stream cannot be decoded (`invalid_audio`, or `internal_error` when ffmpeg is missing). At most once; the decoder is dead afterwards. */
  error: [VoxgateError];
  /** More input is welcome after {@link PcmDecoder.write} returned false. */
  drain: [];
}

/** A streaming decoder for one stream. Always attach an `error` listener. */
export interface PcmDecoder extends EventEmitter<PcmDecoderEvents> {
  /** The canonical encoding it was created for. */
  readonly encoding: DecoderEncoding;
  /** Which decoder does the work (null while the container is still being sniffed). */
  readonly backend: 'raw' | 'ffmpeg' | 'ffmpeg-spooled' | 'mpg123' | 'passthrough' | null;
  /** Raw encodings: `pcm` is emitted inside `write()`. */
  readonly synchronous: boolean;
  /** Output channels per frame; 0 until known (compressed input). */
  readonly channels: number;
  /** Bytes written so far. */
  readonly inputBytes: number;
  /** True while the decoder wants the writer to wait for `drain`. */
  readonly needsDrain: boolean;
  /** OS pid of the ffmpeg child, if one is running (tests). */
  readonly pid: number | undefined;
  /**
   * Feed bytes (any split for compressed input and `file` mode; whole samples per call for raw
   * input in `stream` mode). Ignored after `end`/`abort`/failure.
   * @returns false when the writer should wait for `drain` (backpressure).
   * @throws VoxgateError `invalid_request` for a raw frame that does not hold whole samples or a
   *   bad RIFF header — that frame is rejected and the decoder stays usable (raw input only).
   */
  write(bytes: Uint8Array): boolean;
  /**
   * Barrier for `finalize`: resolves when PCM for every byte written so far has been emitted
   * (exact for raw and MP3; for ffmpeg, once it has gone quiet — see `FfmpegDecoder.flush`). Bytes
   * written while a flush is pending are held and decoded after it resolves.
   */
  flush(): Promise<void>;
  /**
   * End of input: resolves once every sample has been emitted and resources are released.
   * @throws VoxgateError (rejects) when the decode failed (the same error the `error` event carried).
   */
  end(): Promise<void>;
  /** Release everything now (ffmpeg killed, temp files deleted). Idempotent; emits nothing. */
  abort(): void;
}

/**
 * Create a decoder. Raw encodings are validated here; containers are validated on the first bytes.
 * @throws VoxgateError `config_error` for an unknown encoding, or a raw encoding without a
 *   supported `sampleRate` / with an invalid channel count.
 */
export function createPcmDecoder(o: PcmDecoderOptions): PcmDecoder {
  const encoding = normalizeEncoding(o.encoding);
  if (!encoding) {
    throw new VoxgateError('config_error', `unknown encoding "${o.encoding}"; supported: ${DECODER_ENCODINGS.filter((e) => e !== 'auto').join(', ')}`);
  }
  if (isRawEncoding(encoding)) {
    const rate = o.sampleRate ?? (encoding === 'linear16' ? 16000 : 8000);
    if (!(STREAM_SAMPLE_RATES as readonly number[]).includes(rate)) {
      throw new VoxgateError('config_error', `unsupported sample_rate ${rate}; supported: ${STREAM_SAMPLE_RATES.join(', ')}`);
    }
    const channels = o.channels ?? 1;
    if (!Number.isInteger(channels) || channels < 1 || channels > 8) throw new VoxgateError('config_error', `unsupported channels ${channels}; supported: 1-8`);
    return new Decoder({ ...o, sampleRate: rate, channels }, encoding);
  }
  return new Decoder(o, encoding);
}

/** What every backend offers (internal). */
interface Backend extends EventEmitter {
  readonly channels: number;
  readonly needsDrain?: boolean;
  readonly pid?: number;
  write(b: Uint8Array): boolean;
  flush(): Promise<void>;
  end(): Promise<void>;
  abort(): void;
}

/** Raw PCM / G.711 through {@link AudioInput}. */
class RawBackend extends EventEmitter implements Backend {
  private readonly input: AudioInput;
  private readonly targetRate: number;
  constructor(
    o: { encoding: 'linear16' | 'mulaw' | 'alaw'; sampleRate: number; channels: number; targetRate: number; keep: boolean; byteStream: boolean },
    private readonly strict: boolean,
  ) {
    super();
    this.targetRate = o.targetRate;
    this.input = new AudioInput({ encoding: o.encoding, sampleRate: o.sampleRate, channels: o.channels, targetRate: o.targetRate, keepChannels: o.keep, byteStream: o.byteStream });
  }
  get channels(): number {
    return this.input.outputChannels;
  }
  write(b: Uint8Array): boolean {
    const { pcm, wavHeader } = this.input.push(b);
    if (wavHeader) this.emit('format', { channels: this.channels, sampleRate: this.targetRate });
    if (pcm.length > 0) this.emit('pcm', pcm);
    return true;
  }
  async flush(): Promise<void> {}
  async end(): Promise<void> {
    const tail = this.input.flush();
    if (tail.length > 0) this.emit('pcm', tail);
    if (this.strict && this.input.missingBytes > 0) {
      throw new VoxgateError('invalid_audio', `the WAV file is truncated: its header announces ${this.input.missingBytes} more bytes of audio than were received`);
    }
  }
  abort(): void {}
}

/** An MP4 whose index follows its audio: written to a temp file, then decoded by ffmpeg from the file. */
class SpoolBackend extends EventEmitter implements Backend {
  private readonly dir: string;
  private readonly file: string;
  private readonly out: WriteStream;
  private ff: FfmpegDecoder | null = null;
  private aborted = false;
  constructor(private readonly targetRate: number, private readonly keep: boolean) {
    super();
    this.dir = mkdtempSync(path.join(tmpdir(), 'voxgate-spool-'));
    this.file = path.join(this.dir, 'upload.mp4');
    this.out = createWriteStream(this.file);
    this.out.on('drain', () => this.emit('drain'));
    this.out.on('error', (err) => this.emit('error', new VoxgateError('internal_error', `cannot spool upload to ${this.dir}: ${err.message}`)));
  }
  get channels(): number {
    return this.ff?.channels ?? 0;
  }
  get needsDrain(): boolean {
    return this.out.writableNeedDrain;
  }
  get pid(): number | undefined {
    return this.ff?.pid;
  }
  write(b: Uint8Array): boolean {
    return this.out.write(b);
  }
  async flush(): Promise<void> {}
  async end(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.out.once('error', reject);
        this.out.end(resolve);
      });
      if (this.aborted) return;
      const ff = new FfmpegDecoder({ format: 'mov', inputFile: this.file, targetRate: this.targetRate, outputChannels: this.keep ? 'keep' : 1, lowLatency: false, strict: true });
      this.ff = ff;
      ff.on('pcm', (p) => this.emit('pcm', p));
      ff.on('format', (f) => this.emit('format', f));
      ff.on('error', () => {}); // surfaced by end()
      await ff.end();
    } finally {
      this.cleanup();
    }
  }
  abort(): void {
    this.aborted = true;
    this.out.destroy();
    this.ff?.abort();
    if (this.ff) void this.ff.whenExited().then(() => this.cleanup());
    else this.cleanup();
  }
  private cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Which container each declared encoding allows. */
const ALLOWED: Record<Exclude<DecoderEncoding, 'linear16' | 'mulaw' | 'alaw'>, readonly ContainerKind[]> = {
  opus: ['ogg', 'webm'],
  'ogg-opus': ['ogg'],
  webm: ['webm'],
  mp3: ['mp3'],
  flac: ['flac', 'ogg'],
  aac: ['aac', 'mp4'],
  mp4: ['mp4'],
  auto: ['wav', 'ogg', 'webm', 'mp3', 'flac', 'mp4', 'aac'],
};

const FFMPEG_FORMAT: Record<Exclude<ContainerKind, 'mp4'>, FfmpegInputFormat> = {
  wav: 'wav',
  ogg: 'ogg',
  webm: 'webm',
  mp3: 'mp3',
  flac: 'flac',
  aac: 'aac',
};

/**
 * Whether ffmpeg gets the minimal-probing flags (`-probesize 32 -analyzeduration 0 -fflags
 * nobuffer`) on a live stream, per demuxer — measured by bench/http.ts (20 ms chunks at real-time
 * pace; extra latency = PCM out − last byte of the packet written, p50):
 * - Ogg/Opus and WebM/Opus: the flags *cost* a packet (p50 21 → 0.3 ms; first PCM 61 → 41 ms on
 *   Ogg, 181 → 161 ms on WebM): their headers describe the stream, so default probing ends at once;
 * - MP3 / ADTS AAC (headerless streams): default probing holds ~1.4 s of audio (first PCM 1421 →
 *   141 ms with the flags) — though MP3 sessions use the in-process mpg123 decoder anyway;
 * - FLAC and MP4: no difference (FLAC's parser holds ~10 frames, ~0.8 s, either way).
 */
export const FFMPEG_LOW_LATENCY: Record<FfmpegInputFormat, boolean> = { ogg: false, webm: false, mp3: true, aac: true, flac: false, mov: false, wav: false };

/** Bytes buffered to find an MP4's `moov`/`mdat` order or a WAV header before giving up. */
const MAX_HEAD_BYTES = 1024 * 1024;

const hex = (b: Uint8Array): string => Buffer.from(b.subarray(0, 8)).toString('hex').replace(/(..)/g, '$1 ').trim();

/** The {@link PcmDecoder} implementation: sniffs, validates, then delegates to a backend. */
class Decoder extends EventEmitter<PcmDecoderEvents> implements PcmDecoder {
  readonly synchronous: boolean;
  backend: PcmDecoder['backend'] = null;
  private impl: Backend | null = null;
  /** A backend started before the first byte (stream mode), and the container it assumes. */
  private eager: { kind: ContainerKind; b: Backend } | null = null;
  private head: Uint8Array = new Uint8Array(0);
  private held: Uint8Array[] = [];
  private flushing: Promise<void> | null = null;
  private bytesIn = 0;
  private failed: VoxgateError | null = null;
  private closed = false;
  private readonly mode: 'stream' | 'file';

  constructor(
    private readonly o: PcmDecoderOptions,
    readonly encoding: DecoderEncoding,
  ) {
    super();
    this.mode = o.mode ?? 'stream';
    this.synchronous = isRawEncoding(encoding);
    if (isRawEncoding(encoding)) {
      this.use(new RawBackend({ encoding, sampleRate: o.sampleRate!, channels: o.channels!, targetRate: o.targetRate, keep: o.outputChannels === 'keep', byteStream: this.mode === 'file' }, this.mode === 'file'), 'raw');
      return;
    }
    if (this.mode === 'stream') {
      const guess: ContainerKind | null =
        encoding === 'opus' || encoding === 'ogg-opus' ? 'ogg' : encoding === 'webm' ? 'webm' : encoding === 'flac' ? 'flac' : encoding === 'mp3' ? 'mp3' : null;
      if (guess) this.eager = { kind: guess, b: this.makeBackend(guess) };
    }
  }

  get channels(): number {
    return this.impl?.channels ?? 0;
  }
  get inputBytes(): number {
    return this.bytesIn;
  }
  get needsDrain(): boolean {
    return this.impl?.needsDrain ?? false;
  }
  get pid(): number | undefined {
    return this.impl?.pid ?? this.eager?.b.pid;
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed || this.failed || bytes.length === 0) return true;
    if (this.flushing) {
      this.held.push(bytes.slice());
      return true;
    }
    this.bytesIn += bytes.length;
    if (this.impl) return this.impl.write(bytes);
    return this.sniff(bytes);
  }

  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.impl || this.closed || this.failed) return Promise.resolve();
    const impl = this.impl;
    this.flushing = impl.flush().then(() => {
      this.flushing = null;
      const held = this.held;
      this.held = [];
      for (const b of held) this.write(b);
    });
    return this.flushing;
  }

  async end(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (this.closed) {
      if (this.failed) throw this.failed;
      return;
    }
    this.closed = true;
    if (!this.impl && !this.failed) {
      if (this.head.length === 0) {
        this.eager?.b.abort();
        this.eager = null;
        if (this.mode === 'file') this.fail(new VoxgateError('invalid_audio', 'no audio data was received'));
        return this.endFailed();
      }
      // Fewer bytes than a signature needs: decide on what there is.
      this.decide(true);
    }
    if (this.failed) return this.endFailed();
    try {
      await this.impl!.end();
    } catch (err) {
      this.fail(err instanceof VoxgateError ? err : new VoxgateError('internal_error', String(err)));
    }
    return this.endFailed();
  }

  abort(): void {
    this.closed = true;
    this.held = [];
    this.impl?.abort();
    this.eager?.b.abort();
    this.eager = null;
  }

  private endFailed(): void {
    if (this.failed) throw this.failed;
  }

  private sniff(bytes: Uint8Array): boolean {
    const joined = new Uint8Array(this.head.length + bytes.length);
    joined.set(this.head);
    joined.set(bytes, this.head.length);
    this.head = joined;
    this.decide(false);
    return true;
  }

  /** Decide the container from `head` (at end of input when `final`). */
  private decide(final: boolean): void {
    const s = sniffContainer(this.head);
    if (s.kind === 'need_more' && !final) return;
    const allowed = ALLOWED[this.encoding as keyof typeof ALLOWED];
    if (s.kind === 'need_more' || s.kind === 'unknown' || !allowed.includes(s.kind)) {
      const what = s.kind === 'need_more' ? `only ${this.head.length} bytes` : s.kind === 'unknown' ? 'no known audio container' : `${s.kind.toUpperCase()} data`;
      const message =
        this.encoding === 'auto'
          ? `unrecognised audio format: expected WAV, FLAC, MP3, Ogg/Opus, WebM/Opus, M4A/MP4 or AAC, got ${what} (first bytes ${hex(this.head)}); for headerless audio declare encoding and sample_rate`
          : `audio does not look like ${this.encoding} (${allowed.join(' or ')}): got ${what} (first bytes ${hex(this.head)})`;
      this.fail(new VoxgateError('invalid_audio', message));
      return;
    }
    let kind: ContainerKind = s.kind;
    if (kind === 'mp4') {
      const layout = mp4Layout(this.head);
      if (layout.kind === 'need_more' && !final && this.head.length < MAX_HEAD_BYTES) return;
      if (layout.kind === 'invalid') {
        this.fail(new VoxgateError('invalid_audio', `MP4/M4A container is malformed: ${layout.reason}`));
        return;
      }
      if (layout.kind !== 'streamable') {
        this.use(new SpoolBackend(this.o.targetRate, this.o.outputChannels === 'keep'), 'ffmpeg-spooled');
        this.feedHead();
        return;
      }
    }
    if (kind === 'wav') {
      const h = parseWavHeader(this.head);
      if (h.kind === 'need_more' && !final && this.head.length < MAX_HEAD_BYTES) return;
      if (h.kind === 'wav' && (h.format === 'pcm_s16le' || h.format === 'mulaw' || h.format === 'alaw')) {
        const rawEnc = h.format === 'pcm_s16le' ? 'linear16' : h.format;
        this.use(new RawBackend({ encoding: rawEnc, sampleRate: h.sampleRate, channels: h.channels, targetRate: this.o.targetRate, keep: this.o.outputChannels === 'keep', byteStream: true }, this.mode === 'file'), 'raw');
        this.feedHead();
        return;
      }
      kind = 'wav'; // other WAV formats (float, 24-bit, ADPCM …): ffmpeg
    }
    let backend: Backend;
    if (this.eager && this.eager.kind === kind) {
      backend = this.eager.b;
    } else {
      this.eager?.b.abort();
      backend = this.makeBackend(kind);
    }
    this.eager = null;
    this.use(backend, backend instanceof Mp3StreamDecoder ? 'mpg123' : 'ffmpeg');
    this.feedHead();
  }

  private makeBackend(kind: ContainerKind): Backend {
    const keep = this.o.outputChannels === 'keep';
    let b: Backend;
    if (kind === 'mp3' && this.mode === 'stream') {
      b = new Mp3StreamDecoder({ targetRate: this.o.targetRate, outputChannels: this.o.outputChannels });
    } else {
      b = new FfmpegDecoder({
        format: kind === 'mp4' ? 'mov' : FFMPEG_FORMAT[kind],
        targetRate: this.o.targetRate,
        outputChannels: keep ? 'keep' : 1,
        lowLatency: this.mode === 'stream' && FFMPEG_LOW_LATENCY[kind === 'mp4' ? 'mov' : FFMPEG_FORMAT[kind]],
        strict: this.mode === 'file',
      });
    }
    // Until adopted, an eager backend's failure (e.g. ffmpeg missing) stays on it (`error` getter).
    b.on('error', () => {});
    return b;
  }

  private use(b: Backend, name: NonNullable<PcmDecoder['backend']>): void {
    this.impl = b;
    this.backend = name;
    b.on('pcm', (p: Int16Array) => {
      if (!this.failed) this.emit('pcm', p);
    });
    b.on('format', (f: { channels: number; sampleRate: number }) => this.emit('format', f));
    b.on('drain', () => this.emit('drain'));
    b.on('error', (e: VoxgateError) => {
      if (this.impl === b) this.fail(e);
    });
    const err = (b as { error?: VoxgateError | null }).error;
    if (err) this.fail(err);
    if (b instanceof RawBackend) this.emit('format', { channels: b.channels, sampleRate: this.o.targetRate });
  }

  private feedHead(): void {
    const h = this.head;
    this.head = new Uint8Array(0);
    if (this.failed || h.length === 0) return;
    try {
      this.impl!.write(h);
    } catch (err) {
      this.fail(err instanceof VoxgateError ? new VoxgateError('invalid_audio', err.message) : new VoxgateError('internal_error', String(err)));
    }
  }

  private fail(e: VoxgateError): void {
    if (this.failed) return;
    this.failed = e;
    this.held = [];
    this.impl?.abort();
    this.eager?.b.abort();
    this.eager = null;
    this.emit('error', e);
  }
}
