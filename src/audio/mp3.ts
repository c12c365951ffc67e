/**
 * In-process streaming MP3 decoding for live sessions: the `mpg123-decoder` WASM build of libmpg123
 * (shared/spec/engines.md §6: "true streaming, first PCM after the first 1 KB").
 *
 * Chosen over an ffmpeg child for `encoding=mp3` on streaming routes because it decodes each frame
 * as soon as its last byte arrives: measured with 20 ms chunks sent at real-time pace, the PCM of an
 * MP3 frame follows its bytes by ~10 ms (p50) against ~60 ms through ffmpeg, whose MP3 demuxer
 * holds frames back to verify sync (numbers: `bench/http.ts`). It costs ~1 MB per stream and about
 * 6 ms of CPU per second of 44.1 kHz audio on the event loop. Uploaded files still go through
 * ffmpeg (off the event loop).
 *
 * The decoder always returns two channels (mono is duplicated); the real channel count comes from
 * the first frame header. Output is resampled to the target rate with our polyphase Resampler.
 */
import { EventEmitter } from 'node:events';
import { MPEGDecoder } from 'mpg123-decoder';
import { VoxgateError } from '../util/errors.js';
import { float32ToInt16 } from './pcm.js';
import { Resampler } from './resample.js';

/** Decode errors tolerated once audio is flowing (a glitch), before the stream is declared corrupt. */
export const MP3_MAX_ERRORS = 8;

/** Event map of an {@link Mp3StreamDecoder}. */
export interface Mp3DecoderEvents {
  /** Interleaved Int16 PCM at the target rate (never empty). */
  pcm: [Int16Array];
  /** Output format, once, before the first `pcm`. */
  format: [{ channels: number; sampleRate: number }];
  /** `invalid_audio`; at most once. */
  error: [VoxgateError];
}

/**
 * Channel count from the first MPEG audio frame header after an optional ID3v2 tag, or null when
 * not found in `head`. (Channel mode 0b11 = mono.)
 */
export function mp3Channels(head: Uint8Array): number | null {
  let at = 0;
  if (head.length >= 10 && head[0] === 0x49 && head[1] === 0x44 && head[2] === 0x33) {
    // ID3v2: 10-byte header, synchsafe size, optional 10-byte footer.
    const size = ((head[6]! & 0x7f) << 21) | ((head[7]! & 0x7f) << 14) | ((head[8]! & 0x7f) << 7) | (head[9]! & 0x7f);
    at = 10 + size + (head[5]! & 0x10 ? 10 : 0);
  }
  for (let i = at; i + 3 < head.length; i++) {
    if (head[i] === 0xff && (head[i + 1]! & 0xe0) === 0xe0) return (head[i + 3]! >> 6) === 3 ? 1 : 2;
  }
  return null;
}

/** Options of an {@link Mp3StreamDecoder}. */
export interface Mp3DecoderOptions {
  targetRate: number;
  outputChannels: 1 | 'keep';
}

/** A streaming MP3 decoder for one stream. Attach an `error` listener. */
export class Mp3StreamDecoder extends EventEmitter<Mp3DecoderEvents> {
  private readonly dec = new MPEGDecoder();
  private readonly ready: Promise<void>;
  private isReady = false;
  private queue: Uint8Array[] = [];
  private head: Uint8Array = new Uint8Array(0);
  private srcChannels: number | null = null;
  private resamplers: Resampler[] = [];
  private sourceRate = 0;
  private errors = 0;
  private samplesOut = 0;
  private bytesIn = 0;
  private done = false;
  private failed: VoxgateError | null = null;

  constructor(private readonly o: Mp3DecoderOptions) {
    super();
    this.ready = this.dec.ready.then(() => {
      this.isReady = true;
      const q = this.queue;
      this.queue = [];
      for (const b of q) this.decode(b);
    });
  }

  /** Output channels per frame (0 until known). */
  get channels(): number {
    return this.resamplers.length;
  }

  /** Feed MP3 bytes (any split). PCM is emitted synchronously once the decoder is loaded. */
  write(bytes: Uint8Array): boolean {
    if (this.done || this.failed || bytes.length === 0) return true;
    this.bytesIn += bytes.length;
    if (this.isReady) this.decode(bytes);
    else this.queue.push(bytes.slice());
    return true;
  }

  /** Nothing is held back beyond an incomplete frame; resolves once the WASM module is loaded. */
  async flush(): Promise<void> {
    await this.ready;
  }

  /**
   * End of stream: drain the resamplers and free the WASM instance.
   * @throws VoxgateError (rejects) when the stream failed, or held no decodable MP3 frame.
   */
  async end(): Promise<void> {
    await this.ready;
    if (this.done) {
      if (this.failed) throw this.failed;
      return;
    }
    if (!this.failed && this.samplesOut === 0 && this.bytesIn > 0) {
      this.fail(new VoxgateError('invalid_audio', `no MP3 frame could be decoded from ${this.bytesIn} bytes`));
    }
    if (!this.failed && this.resamplers.length > 0) this.emitPcm(this.resamplers.map((r) => r.flush()));
    this.close();
    if (this.failed) throw this.failed;
  }

  /** Free everything now. Idempotent. */
  abort(): void {
    this.close();
  }

  private close(): void {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    if (this.isReady) this.dec.free();
    else void this.ready.then(() => this.dec.free());
  }

  private decode(bytes: Uint8Array): void {
    if (this.done || this.failed) return;
    if (this.srcChannels === null) {
      const joined = new Uint8Array(this.head.length + bytes.length);
      joined.set(this.head);
      joined.set(bytes, this.head.length);
      this.head = joined.length <= 256 * 1024 ? joined : new Uint8Array(0);
      this.srcChannels = mp3Channels(joined);
    }
    // mpg123-decoder reports each decode error on console.error as well as in `errors`; the
    // errors are handled here, so that console line is suppressed (synchronous, single-threaded).
    const consoleError = console.error;
    console.error = () => {};
    let r;
    try {
      r = this.dec.decode(bytes);
    } finally {
      console.error = consoleError;
    }
    if (r.errors.length > 0) {
      this.errors += r.errors.length;
      if (this.samplesOut === 0 || this.errors > MP3_MAX_ERRORS) {
        this.fail(new VoxgateError('invalid_audio', `MP3 data could not be decoded (${r.errors[0]!.message.trim()})`));
        return;
      }
    }
    if (r.samplesDecoded === 0) return;
    if (this.resamplers.length === 0 || r.sampleRate !== this.sourceRate) {
      const n = this.o.outputChannels === 1 ? 1 : (this.srcChannels ?? 2);
      if (this.resamplers.length > 0 && this.resamplers.length !== n) {
        this.fail(new VoxgateError('invalid_audio', 'MP3 stream changed its channel count mid-stream'));
        return;
      }
      const tails = this.resamplers.map((rs) => rs.flush());
      if (tails.some((t) => t.length > 0)) this.emitPcm(tails);
      this.sourceRate = r.sampleRate;
      const first = this.resamplers.length === 0;
      this.resamplers = Array.from({ length: n }, () => new Resampler(r.sampleRate, this.o.targetRate));
      if (first) this.emit('format', { channels: n, sampleRate: this.o.targetRate });
    }
    const [l, rr] = r.channelData as [Float32Array, Float32Array];
    let chans: Float32Array[];
    if (this.resamplers.length === 1) {
      if (this.srcChannels === 1) chans = [l];
      else {
        const m = new Float32Array(l.length);
        for (let i = 0; i < m.length; i++) m[i] = (l[i]! + rr[i]!) / 2;
        chans = [m];
      }
    } else {
      chans = this.resamplers.length === 2 ? [l, rr] : [l];
    }
    this.emitPcm(chans.map((c, i) => this.resamplers[i]!.process(float32ToInt16(c))));
  }

  private emitPcm(chans: Int16Array[]): void {
    const n = chans.length;
    const frames = Math.min(...chans.map((c) => c.length));
    if (frames === 0) return;
    let out: Int16Array;
    if (n === 1) out = chans[0]!.length === frames ? chans[0]! : chans[0]!.slice(0, frames);
    else {
      out = new Int16Array(frames * n);
      for (let i = 0; i < frames; i++) for (let c = 0; c < n; c++) out[i * n + c] = chans[c]![i]!;
    }
    this.samplesOut += out.length;
    this.emit('pcm', out);
  }

  private fail(e: VoxgateError): void {
    if (this.failed) return;
    this.failed = e;
    this.close();
    this.emit('error', e);
  }
}
