/**
 * TTS output encoding: engine PCM (mono int16 at the voice's native rate) → the client's
 * `encoding` and `sample_rate` (shared/spec/protocols.md §1.5 `config.encoding`/`sample_rate`,
 * §3 `encoding`/`sample_rate`, §1.7 HTTP audio; issue #4 "Output encodings").
 *
 *   PCM (native rate) → Resampler (polyphase, resample.ts) → linear16 | mulaw | alaw   (in process)
 *                                                          → mp3 | opus               (ffmpeg child)
 *
 * An {@link AudioEncoder} encodes one *stream*: an utterance on a WebSocket (between flushes, cut
 * into segments by `endSegment`) or a whole HTTP response. Byte counts are exact for the PCM
 * encodings: linear16 = 2 bytes per sample, mulaw/alaw = 1, so
 * `bytes = duration × sample_rate × bytesPerSample` always holds.
 */
import { encodeAlaw, encodeMulaw } from './g711.js';
import { FfmpegEncoder, OPUS_SAMPLE_RATES, type ByteSink, type CompressedEncoding } from './ffmpeg_encode.js';
import { STREAM_SAMPLE_RATES } from './input.js';
import { int16ToBytesLE } from './pcm.js';
import { Resampler } from './resample.js';

export type { ByteSink } from './ffmpeg_encode.js';

/** Output encodings of TTS (protocols.md §1.5 S1 enum). */
export const TTS_ENCODINGS = ['linear16', 'mulaw', 'alaw', 'mp3', 'opus'] as const;
/** A TTS output encoding. */
export type TtsEncoding = (typeof TTS_ENCODINGS)[number];
/** Encodings produced in process with a fixed byte rate. */
export type PcmEncoding = 'linear16' | 'mulaw' | 'alaw';

/** Is `e` one of the uncompressed encodings? */
export function isPcmEncoding(e: TtsEncoding): e is PcmEncoding {
  return e === 'linear16' || e === 'mulaw' || e === 'alaw';
}

/** Output rates (Hz) accepted per encoding: the SLNG `SampleRate` enum; opus only where libopus runs natively. */
export function supportedSampleRates(e: TtsEncoding): readonly number[] {
  return e === 'opus' ? STREAM_SAMPLE_RATES.filter((r) => (OPUS_SAMPLE_RATES as readonly number[]).includes(r)) : STREAM_SAMPLE_RATES;
}

/**
 * Default output rate when a request names none: 8000 Hz for G.711 (telephony, Deepgram's default
 * for mulaw/alaw), 48000 Hz for opus, 24000 Hz otherwise (Deepgram's and SLNG's examples).
 */
export function defaultSampleRate(e: TtsEncoding): number {
  return e === 'mulaw' || e === 'alaw' ? 8000 : e === 'opus' ? 48000 : 24000;
}

/** Bytes per sample of a PCM encoding (linear16 2, G.711 1). */
export function bytesPerSample(e: PcmEncoding): number {
  return e === 'linear16' ? 2 : 1;
}

/**
 * HTTP Content-Type of audio in `e` at `rate` Hz.
 * @param container `wav` wraps PCM encodings in RIFF/WAVE; `none` is raw bytes. Ignored for mp3 (`audio/mpeg`) and opus (`audio/ogg`).
 */
export function contentType(e: TtsEncoding, rate: number, container: 'wav' | 'none'): string {
  if (e === 'mp3') return 'audio/mpeg';
  if (e === 'opus') return 'audio/ogg; codecs=opus';
  if (container === 'wav') return 'audio/wav';
  if (e === 'mulaw') return `audio/PCMU; rate=${rate}; channels=1`;
  if (e === 'alaw') return `audio/PCMA; rate=${rate}; channels=1`;
  return `audio/pcm; rate=${rate}; channels=1; encoding=signed-integer; bits=16; endianness=little`;
}

/**
 * A canonical RIFF/WAVE header for mono PCM (format 1, 16-bit), μ-law (7, 8-bit) or A-law (6, 8-bit).
 * @param dataBytes size of the data chunk, or `null` for a stream of unknown length
 *   (sizes written as 0xFFFFFFFF, which ffmpeg, sox and browsers read to end of stream).
 * @returns 44 bytes (PCM) or 46 bytes (G.711, whose `fmt ` chunk carries `cbSize`).
 */
export function wavHeader(e: PcmEncoding, rate: number, dataBytes: number | null): Buffer {
  const bps = bytesPerSample(e);
  const fmtSize = e === 'linear16' ? 16 : 18;
  const header = Buffer.alloc(20 + fmtSize + 8);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(dataBytes === null ? 0xffffffff : Math.min(0xffffffff, header.length - 8 + dataBytes), 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(fmtSize, 16);
  header.writeUInt16LE(e === 'linear16' ? 1 : e === 'alaw' ? 6 : 7, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * bps, 28);
  header.writeUInt16LE(bps, 32);
  header.writeUInt16LE(bps * 8, 34);
  if (fmtSize === 18) header.writeUInt16LE(0, 36);
  header.write('data', 20 + fmtSize, 'latin1');
  header.writeUInt32LE(dataBytes === null ? 0xffffffff : dataBytes, 24 + fmtSize);
  return header;
}

/** Options of {@link createEncoder}. */
export interface EncoderOptions {
  encoding: TtsEncoding;
  /** Output rate, Hz. */
  sampleRate: number;
  /** Rate of the PCM that will be written (the voice's native rate), Hz. */
  inputRate: number;
  /** Receives encoded bytes in order. Returning a promise pauses the encoder until it settles. */
  sink: ByteSink;
  /** Largest chunk handed to the sink for PCM encodings, in ms of audio (default 100). */
  chunkMs?: number;
}

/**
 * Encoder of one stream. `write` as PCM arrives, `endSegment` after each segment when the caller
 * marks segments, `end` once; after `end`/`abort` the instance is spent. Not thread-shared.
 *
 * Segments (protocols.md §1.5 `segment_start` → audio → `segment_end`): {@link endSegment} hands
 * every byte for the PCM written so far to the sink before it resolves, so a segment marker sent
 * afterwards follows the segment's last audio byte. PCM encodings flush the resampler's look-ahead
 * (a few ms); mp3/opus finish the current ffmpeg stream (neither libmp3lame nor libopus can flush
 * mid-stream), and the next segment is a new stream: concatenated mp3 streams and chained Ogg
 * streams (each with its own serial number) decode as one.
 */
export interface AudioEncoder {
  readonly encoding: TtsEncoding;
  /** Output rate, Hz. */
  readonly sampleRate: number;
  /** Seconds of audio (at the output rate) written so far, including resampler tails emitted by `endSegment`/`end`. */
  readonly seconds: number;
  /**
   * Encode PCM at the input rate.
   * @returns a promise when the sink or encoder asked to wait (await it before writing more).
   */
  write(pcm: Int16Array): void | Promise<void>;
  /**
   * Start any encoder process the next segment needs now (mp3/opus: spawn ffmpeg), so its start-up
   * overlaps with synthesis. No-op for PCM encodings and when one is already running.
   */
  prepare(): void;
  /**
   * End of a segment: emit every byte for the PCM written so far; resolves once all of it was handed
   * to the sink. The stream goes on with the next `write`. @throws VoxgateError `provider_error` (ffmpeg).
   */
  endSegment(): Promise<void>;
  /** Emit everything pending (resampler tail, encoder delay) and finish. @throws VoxgateError `provider_error` (ffmpeg). */
  end(): Promise<void>;
  /** Drop everything now (barge-in, hang-up); kills an ffmpeg child. Idempotent. */
  abort(): void;
}

/** linear16 / mulaw / alaw, in process. */
class PcmStreamEncoder implements AudioEncoder {
  private readonly resampler: Resampler;
  private samples = 0;
  private aborted = false;
  private readonly chunkSamples: number;

  constructor(
    readonly encoding: PcmEncoding,
    readonly sampleRate: number,
    inputRate: number,
    private readonly sink: ByteSink,
    chunkMs: number,
  ) {
    this.resampler = new Resampler(inputRate, sampleRate);
    this.chunkSamples = Math.max(1, Math.round((sampleRate * chunkMs) / 1000));
  }

  get seconds(): number {
    return this.samples / this.sampleRate;
  }

  write(pcm: Int16Array): void | Promise<void> {
    if (this.aborted) return;
    return this.emit(this.resampler.process(pcm));
  }

  prepare(): void {}

  async endSegment(): Promise<void> {
    if (this.aborted) return;
    await this.emit(this.resampler.flush()); // the look-ahead tail; the resampler starts afresh
  }

  async end(): Promise<void> {
    await this.endSegment();
    this.aborted = true; // spent
  }

  abort(): void {
    this.aborted = true;
  }

  private emit(out: Int16Array): void | Promise<void> {
    if (out.length === 0) return;
    this.samples += out.length;
    let wait: Promise<void> | null = null;
    const pieces: Buffer[] = [];
    for (let o = 0; o < out.length; o += this.chunkSamples) {
      const part = out.subarray(o, o + this.chunkSamples);
      pieces.push(this.encoding === 'linear16' ? int16ToBytesLE(part) : Buffer.from(this.encoding === 'mulaw' ? encodeMulaw(part) : encodeAlaw(part)));
    }
    // Hand every piece over now (order is what matters; the sink accounts for buffering) and
    // report the last wait request, so the producer pauses before the next engine chunk.
    for (const p of pieces) {
      const r = this.sink(p);
      if (r) wait = r;
    }
    return wait ?? undefined;
  }
}

/**
 * mp3 / opus through ffmpeg, fed by our resampler: one ffmpeg stream per segment (see
 * {@link AudioEncoder}). The first is spawned at construction (warm start); after a segment, the
 * next is spawned by `prepare()` or the first `write()`.
 */
class CompressedStreamEncoder implements AudioEncoder {
  private readonly resampler: Resampler;
  /** The current segment's ffmpeg, or null between segments. */
  private ff: FfmpegEncoder | null;
  /** Has PCM been written to `ff`? An idle ffmpeg is killed at `end()`, never finished (it would emit empty-stream headers). */
  private ffUsed = false;
  private samples = 0;
  private spent = false;

  constructor(
    readonly encoding: CompressedEncoding,
    readonly sampleRate: number,
    inputRate: number,
    private readonly sink: ByteSink,
  ) {
    this.resampler = new Resampler(inputRate, sampleRate);
    this.ff = this.spawn();
  }

  get seconds(): number {
    return this.samples / this.sampleRate;
  }

  private spawn(): FfmpegEncoder {
    return new FfmpegEncoder(this.encoding, this.sampleRate, this.sink, undefined, nextOggSerial());
  }

  prepare(): void {
    if (!this.spent && !this.ff) this.ff = this.spawn();
  }

  write(pcm: Int16Array): void | Promise<void> {
    if (this.spent) return;
    const out = this.resampler.process(pcm);
    return this.feed(out);
  }

  private feed(out: Int16Array): void | Promise<void> {
    if (out.length === 0) return;
    this.samples += out.length;
    this.ff ??= this.spawn();
    this.ffUsed = true;
    return this.ff.write(out);
  }

  async endSegment(): Promise<void> {
    if (this.spent) return;
    await this.feed(this.resampler.flush());
    const ff = this.ff;
    if (!ff || !this.ffUsed) return;
    try {
      await ff.end(); // every encoded byte of this segment is with the sink
    } finally {
      if (this.ff === ff) {
        this.ff = null;
        this.ffUsed = false;
      }
    }
  }

  async end(): Promise<void> {
    await this.endSegment();
    this.spent = true;
    this.ff?.abort(); // a warm ffmpeg that got no audio
    this.ff = null;
  }

  abort(): void {
    this.spent = true;
    this.ff?.abort();
    this.ff = null;
  }
}

/**
 * Ogg serial numbers for successive streams: each segment is its own Ogg stream and RFC 3533 wants
 * the chained streams of one physical stream to have distinct serials. A process-wide counter keeps
 * them distinct (and output deterministic for a given order of streams).
 */
let oggSerial = 0;
function nextOggSerial(): number {
  oggSerial = (oggSerial + 1) & 0x3fffffff;
  return oggSerial;
}

/**
 * Create the encoder for one stream. For mp3/opus this spawns ffmpeg immediately (warm start).
 * @throws RangeError for an invalid rate (callers validate rates with {@link supportedSampleRates} first).
 */
export function createEncoder(o: EncoderOptions): AudioEncoder {
  if (isPcmEncoding(o.encoding)) return new PcmStreamEncoder(o.encoding, o.sampleRate, o.inputRate, o.sink, o.chunkMs ?? 100);
  return new CompressedStreamEncoder(o.encoding, o.sampleRate, o.inputRate, o.sink);
}
