/**
 * The per-session audio input pipeline: client bytes → PCM the engine consumes.
 *
 *   bytes → [RIFF header sniffing] → decode (linear16 / mulaw / alaw) → downmix → resample → Int16 mono
 *
 * Implements issue #2 "Audio in" and "A client that sends a whole WAV file, header included, as
 * linear16 … gets a correct transcript": a RIFF header at the start of the stream is recognised and
 * skipped, and the header's own format, rate and channel count then describe the bytes (they are the
 * truth about the file; the `init` values are a client's guess). Encodings and rates:
 * shared/spec/protocols.md §1.3 (`config.encoding`, `config.sample_rate` enum).
 */
import { VoxgateError } from '../util/errors.js';
import { decodeAlaw, decodeMulaw } from './g711.js';
import { bytesToInt16LE, deinterleave, downmix, interleave } from './pcm.js';
import { Resampler } from './resample.js';
import { RiffSniffer, WavFormatError, type WavHeader } from './wav.js';

/** Encodings accepted on streaming STT routes today. */
export const STREAM_ENCODINGS = ['linear16', 'mulaw', 'alaw'] as const;
export type StreamEncoding = (typeof STREAM_ENCODINGS)[number];

/** Compressed encodings that are recognised but not yet decodable on streaming routes. */
export const COMPRESSED_ENCODINGS = ['mp3', 'opus', 'ogg-opus', 'ogg_opus', 'flac', 'webm', 'aac'] as const;

/** Sample rates (Hz) accepted in `init` (protocols.md §1.3 `SampleRate` enum). */
export const STREAM_SAMPLE_RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000] as const;

/** Options of an {@link AudioInput}. */
export interface AudioInputOptions {
  encoding: StreamEncoding;
  /** Hz of the client's audio. */
  sampleRate: number;
  /** Interleaved channels in the client's audio. */
  channels: number;
  /** Hz the engine consumes. */
  targetRate: number;
  /**
   * Keep the channels (Deepgram `multichannel=true`): output is interleaved `channels`-channel PCM at
   * the target rate, each channel resampled on its own. Default false: downmix to mono.
   */
  keepChannels?: boolean;
  /**
   * The input is a byte stream with arbitrary chunk boundaries (an HTTP body), not whole-sample
   * WebSocket frames: partial samples are carried to the next push instead of rejected. Default false.
   */
  byteStream?: boolean;
}

/** What one pushed frame produced. */
export interface AudioChunk {
  /** PCM at the target rate (may be empty): mono, or interleaved channels with `keepChannels`. */
  pcm: Int16Array;
  /** Set when this frame began with a RIFF/WAVE header that was consumed. */
  wavHeader?: WavHeader;
}

/**
 * Stateful converter for one session's audio stream.
 * @throws VoxgateError `invalid_request` from {@link push} for a raw linear16 frame that does not
 *   hold whole sample frames (odd length; the pipeline stays usable), or for a malformed or
 *   unsupported RIFF/WAV header (every later frame is then rejected too: the stream's format is unknown).
 */
export class AudioInput {
  private encoding: StreamEncoding;
  private sampleRate: number;
  private channels: number;
  private resampler: Resampler;
  /** Per-channel resamplers with `keepChannels` (created on first use, as the WAV header may change the count). */
  private channelResamplers: Resampler[] = [];
  private readonly sniffer = new RiffSniffer();
  /** WAV mode: the input is a byte stream (a file), so partial samples are carried between frames. */
  private wav = false;
  private carry: Uint8Array = new Uint8Array(0);
  /** Bytes of WAV `data` still expected, or null when unknown / not WAV. */
  private wavRemaining: number | null = null;

  constructor(private readonly opts: AudioInputOptions) {
    this.encoding = opts.encoding;
    this.sampleRate = opts.sampleRate;
    this.channels = opts.channels;
    this.resampler = new Resampler(opts.sampleRate, opts.targetRate);
    this.wav = opts.byteStream ?? false;
  }

  /** Channels per frame of {@link AudioChunk.pcm}: 1, or the input's channels with `keepChannels`. */
  get outputChannels(): number {
    return this.opts.keepChannels ? this.channels : 1;
  }

  /** Bytes a WAV header announced that have not arrived yet (a truncated file at end of stream), or 0. */
  get missingBytes(): number {
    return this.wavRemaining ?? 0;
  }

  /** Bytes per sample frame (all channels) of the current format. */
  private get blockAlign(): number {
    return (this.encoding === 'linear16' ? 2 : 1) * this.channels;
  }

  /** Convert one client frame. See the class docs for errors. */
  push(frame: Uint8Array): AudioChunk {
    let sniffed: ReturnType<RiffSniffer['push']>;
    try {
      sniffed = this.sniffer.push(frame);
    } catch (err) {
      if (err instanceof WavFormatError) throw new VoxgateError('invalid_request', `audio starts with a RIFF header that cannot be used: ${err.message}`);
      throw err;
    }
    if ('pending' in sniffed) return { pcm: new Int16Array(0) };
    let bytes = sniffed.audio;
    let wavHeader: WavHeader | undefined;
    if (sniffed.header) {
      wavHeader = sniffed.header;
      this.adoptWavHeader(sniffed.header);
    }
    if (this.wav) {
      if (this.wavRemaining !== null) {
        if (bytes.length > this.wavRemaining) bytes = bytes.subarray(0, this.wavRemaining);
        this.wavRemaining -= bytes.length;
      }
      if (this.carry.length > 0) {
        const joined = new Uint8Array(this.carry.length + bytes.length);
        joined.set(this.carry);
        joined.set(bytes, this.carry.length);
        bytes = joined;
      }
      const whole = bytes.length - (bytes.length % this.blockAlign);
      this.carry = bytes.slice(whole);
      bytes = bytes.subarray(0, whole);
    } else if (bytes.length % this.blockAlign !== 0) {
      throw new VoxgateError(
        'invalid_request',
        `${this.encoding} frame of ${bytes.length} bytes does not hold whole samples (${this.blockAlign} bytes per sample frame for ${this.channels} channel(s)); the frame was rejected`,
      );
    }
    return { pcm: this.convert(bytes), wavHeader };
  }

  /** Drain the resampler's tail at end of stream (interleaved with `keepChannels`). */
  flush(): Int16Array {
    if (this.opts.keepChannels && this.channels > 1) return interleave(this.channelResamplers.map((r) => r.flush()));
    return this.resampler.flush();
  }

  private adoptWavHeader(h: WavHeader): void {
    const enc: StreamEncoding | null =
      h.format === 'pcm_s16le' ? 'linear16' : h.format === 'mulaw' ? 'mulaw' : h.format === 'alaw' ? 'alaw' : null;
    if (!enc) {
      throw new VoxgateError('invalid_request', `WAV header declares ${h.format} audio; send 16-bit PCM, mu-law or A-law`);
    }
    this.wav = true;
    this.wavRemaining = h.dataLength;
    this.encoding = enc;
    this.channels = h.channels;
    if (h.sampleRate !== this.sampleRate) {
      this.sampleRate = h.sampleRate;
      this.resampler = new Resampler(h.sampleRate, this.opts.targetRate);
      this.channelResamplers = [];
    }
  }

  private convert(bytes: Uint8Array): Int16Array {
    if (bytes.length === 0) return new Int16Array(0);
    let pcm: Int16Array;
    switch (this.encoding) {
      case 'linear16':
        pcm = bytesToInt16LE(bytes);
        break;
      case 'mulaw':
        pcm = decodeMulaw(bytes);
        break;
      case 'alaw':
        pcm = decodeAlaw(bytes);
        break;
    }
    if (this.channels > 1 && this.opts.keepChannels) {
      if (this.channelResamplers.length !== this.channels) {
        this.channelResamplers = Array.from({ length: this.channels }, () => new Resampler(this.sampleRate, this.opts.targetRate));
      }
      return interleave(deinterleave(pcm, this.channels).map((c, i) => this.channelResamplers[i]!.process(c)));
    }
    if (this.channels > 1) pcm = downmix(pcm, this.channels);
    return this.resampler.process(pcm);
  }
}
