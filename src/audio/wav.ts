/**
 * RIFF/WAVE parsing and writing.
 *
 * Clients may send a WAV file (header included) as the first bytes of a `linear16` stream, and the
 * HTTP routes accept WAV uploads; {@link RiffSniffer} strips such a header from a live stream and
 * {@link readWavFile} decodes a whole file. Supported sample formats: PCM u8/s16/s24/s32
 * (little-endian), IEEE float32, G.711 μ-law and A-law, plain or `WAVE_FORMAT_EXTENSIBLE`.
 * Big-endian `RIFX` and 64-bit `RF64` files are reported as invalid.
 *
 * Serves shared/spec/protocols.md §1.3 (binary `linear16` audio frames), §1.7 (HTTP uploads of
 * WAV files) and §2.2 (Deepgram: `encoding` omitted for containerised audio).
 */
import { readFile } from 'node:fs/promises';
import { decodeAlaw, decodeMulaw } from './g711.js';
import { bytesToInt16LE, float32ToInt16, int16ToBytesLE } from './pcm.js';

/** Sample encodings a WAV `fmt ` chunk can declare that this module decodes. */
export type WavSampleFormat = 'pcm_s16le' | 'pcm_u8' | 'pcm_s24le' | 'pcm_s32le' | 'float32' | 'mulaw' | 'alaw';

/** A parsed WAV header. */
export interface WavHeader {
  kind: 'wav';
  format: WavSampleFormat;
  /** Frames per second (Hz). */
  sampleRate: number;
  /** Interleaved channel count (≥ 1). */
  channels: number;
  /** Bits per sample of one channel in the container (8, 16, 24 or 32). */
  bitsPerSample: number;
  /** Byte offset of the first audio byte (just after the `data` chunk header) from the start of the file. */
  dataOffset: number;
  /**
   * Size of the `data` chunk in bytes, or `null` when the header gives 0 or 0xFFFFFFFF, which
   * streaming writers use for "unknown length" (then audio runs to the end of the stream).
   */
  dataLength: number | null;
}

/** Result of {@link parseWavHeader}. */
export type WavHeaderResult =
  | WavHeader
  /** The bytes so far are a valid prefix of a WAV header; give more. */
  | { kind: 'need_more' }
  /** The bytes do not start with a RIFF magic: this is not a WAV container (e.g. raw PCM). */
  | { kind: 'not_wav' }
  /** A RIFF-family container that cannot be used; `reason` is a human-readable explanation. */
  | { kind: 'invalid'; reason: string };

/** Thrown when a WAV stream or file is malformed or uses an unsupported format. */
export class WavFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WavFormatError';
  }
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_ALAW = 6;
const WAVE_FORMAT_MULAW = 7;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID; bytes 0..1 carry the format tag. */
const SUBFORMAT_GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
const RIFF_MAGIC = 'RIFF';

function fourcc(buf: Uint8Array, at: number): string {
  return String.fromCharCode(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!);
}

function u16(buf: Uint8Array, at: number): number {
  return buf[at]! | (buf[at + 1]! << 8);
}

function u32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

function sampleFormat(tag: number, bits: number): { format: WavSampleFormat } | { reason: string } {
  switch (tag) {
    case WAVE_FORMAT_PCM:
      if (bits === 8) return { format: 'pcm_u8' };
      if (bits === 16) return { format: 'pcm_s16le' };
      if (bits === 24) return { format: 'pcm_s24le' };
      if (bits === 32) return { format: 'pcm_s32le' };
      return { reason: `unsupported PCM bit depth ${bits}` };
    case WAVE_FORMAT_IEEE_FLOAT:
      return bits === 32 ? { format: 'float32' } : { reason: `unsupported float bit depth ${bits}` };
    case WAVE_FORMAT_MULAW:
      return bits === 8 ? { format: 'mulaw' } : { reason: `μ-law must be 8 bits, got ${bits}` };
    case WAVE_FORMAT_ALAW:
      return bits === 8 ? { format: 'alaw' } : { reason: `A-law must be 8 bits, got ${bits}` };
    default:
      return { reason: `unsupported format tag 0x${tag.toString(16)}` };
  }
}

type FmtResult = Omit<WavHeader, 'kind' | 'dataOffset' | 'dataLength'> | { reason: string };

function parseFmt(buf: Uint8Array, at: number, size: number): FmtResult {
  if (size < 16) return { reason: `fmt chunk too short (${size} bytes)` };
  let tag = u16(buf, at);
  const channels = u16(buf, at + 2);
  const sampleRate = u32(buf, at + 4);
  const blockAlign = u16(buf, at + 12);
  const bitsPerSample = u16(buf, at + 14);
  if (tag === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40 || u16(buf, at + 16) < 22) return { reason: 'WAVE_FORMAT_EXTENSIBLE fmt chunk too short' };
    const guid = at + 24;
    if (SUBFORMAT_GUID_TAIL.some((b, i) => buf[guid + 2 + i] !== b)) return { reason: 'unknown extensible sub-format GUID' };
    tag = u16(buf, guid);
  }
  const format = sampleFormat(tag, bitsPerSample);
  if ('reason' in format) return format;
  if (channels < 1) return { reason: 'channel count is 0' };
  if (sampleRate < 1) return { reason: 'sample rate is 0' };
  if (blockAlign !== channels * (bitsPerSample / 8)) {
    return { reason: `block align ${blockAlign} does not match ${channels} × ${bitsPerSample}-bit samples` };
  }
  return { format: format.format, sampleRate, channels, bitsPerSample };
}

/**
 * Parses a WAV header from the start of a byte stream or file.
 *
 * Walks the RIFF chunks after `RIFF….WAVE`, skipping any chunk that is not `fmt ` or `data` (e.g.
 * `LIST`, `fact`, `JUNK`), honouring the pad byte after odd-sized chunks, and stops at the `data`
 * chunk header: the audio bytes themselves are not needed.
 * Spec: protocols.md §1.3 / §2.2 (a WAV file streamed as audio), §1.7 (WAV uploads).
 * @param buf The first bytes of the stream (any length).
 * @returns `wav` with the header, `need_more` if `buf` is a valid but incomplete prefix,
 *   `not_wav` if the first bytes are not `RIFF` (nor `RIFX`/`RF64`), or `invalid` with a reason.
 */
export function parseWavHeader(buf: Uint8Array): WavHeaderResult {
  const magicLen = Math.min(4, buf.length);
  const magic = String.fromCharCode(...buf.subarray(0, magicLen));
  if (magicLen < 4) {
    return ['RIFF', 'RIFX', 'RF64'].some((m) => m.startsWith(magic)) ? { kind: 'need_more' } : { kind: 'not_wav' };
  }
  if (magic === 'RIFX') return { kind: 'invalid', reason: 'big-endian RIFX WAV is not supported' };
  if (magic === 'RF64') return { kind: 'invalid', reason: 'RF64 WAV is not supported' };
  if (magic !== RIFF_MAGIC) return { kind: 'not_wav' };
  if (buf.length < 12) return { kind: 'need_more' };
  const form = fourcc(buf, 8);
  if (form !== 'WAVE') return { kind: 'invalid', reason: `RIFF form type ${JSON.stringify(form)} is not WAVE` };

  let fmt: Exclude<FmtResult, { reason: string }> | null = null;
  let at = 12;
  for (;;) {
    if (buf.length < at + 8) return { kind: 'need_more' };
    const id = fourcc(buf, at);
    const size = u32(buf, at + 4);
    const body = at + 8;
    if (id === 'data') {
      if (!fmt) return { kind: 'invalid', reason: 'data chunk before fmt chunk' };
      const dataLength = size === 0 || size === 0xffffffff ? null : size;
      return { kind: 'wav', ...fmt, dataOffset: body, dataLength };
    }
    if (id === 'fmt ') {
      if (buf.length < body + size) return { kind: 'need_more' };
      const parsed = parseFmt(buf, body, size);
      if ('reason' in parsed) return { kind: 'invalid', reason: parsed.reason };
      fmt = parsed;
    }
    at = body + size + (size & 1);
  }
}

/** Result of {@link RiffSniffer.push}. */
export type SniffResult =
  /** `header` is the stripped WAV header, or `null` if the stream is raw audio; `audio` holds the audio bytes of this push (possibly empty). */
  | { header: WavHeader | null; audio: Uint8Array }
  /** Still inside a WAV header; nothing to process yet. */
  | { pending: true };

/**
 * Detects and strips a WAV header at the start of a live audio stream (one instance per stream).
 *
 * The first bytes decide: if they begin with a RIFF magic the header is buffered across pushes
 * until the `data` chunk starts, then reported once with the audio bytes that followed it;
 * otherwise the stream is raw audio and every byte passes through untouched. After the decision,
 * `push()` is a pure pass-through returning `{ header: null, audio: chunk }` (the header is only
 * reported by the push that completed it). Trailing chunks after `data` are not removed.
 * Spec: protocols.md §1.3 binary frames and §2.2 (`encoding` omitted for containerised audio).
 */
export class RiffSniffer {
  /** Largest header (bytes) buffered before the stream is declared invalid. */
  static readonly MAX_HEADER_BYTES = 64 * 1024;

  /** Header bytes buffered so far (grown by doubling, so byte-sized pushes stay linear). */
  private pending = new Uint8Array(0);
  private pendingLength = 0;
  private state: 'sniffing' | 'passthrough' | 'failed' = 'sniffing';
  private failure = '';

  /**
   * Feeds the next bytes of the stream.
   * @param chunk Bytes as received (any length, including 0).
   * @returns The audio bytes to process, with the header when this push completed one, or `{ pending: true }`.
   * @throws WavFormatError if the stream starts like a RIFF file but its header is invalid or
   *   exceeds {@link RiffSniffer.MAX_HEADER_BYTES}; every later push throws the same error.
   */
  push(chunk: Uint8Array): SniffResult {
    if (this.state === 'passthrough') return { header: null, audio: chunk };
    if (this.state === 'failed') throw new WavFormatError(this.failure);
    let all = chunk;
    if (this.pendingLength > 0) {
      this.append(chunk);
      all = this.pending.subarray(0, this.pendingLength);
    }
    const result = parseWavHeader(all);
    switch (result.kind) {
      case 'not_wav':
        this.finish();
        return { header: null, audio: all };
      case 'wav':
        this.finish();
        return { header: result, audio: all.subarray(result.dataOffset) };
      case 'need_more':
        if (all.length > RiffSniffer.MAX_HEADER_BYTES) {
          return this.fail(`WAV header longer than ${RiffSniffer.MAX_HEADER_BYTES} bytes`);
        }
        if (all === chunk) this.append(chunk);
        return { pending: true };
      case 'invalid':
        return this.fail(result.reason);
    }
  }

  private append(chunk: Uint8Array): void {
    const needed = this.pendingLength + chunk.length;
    if (needed > this.pending.length) {
      const grown = new Uint8Array(Math.max(needed, this.pending.length * 2));
      grown.set(this.pending.subarray(0, this.pendingLength));
      this.pending = grown;
    }
    this.pending.set(chunk, this.pendingLength);
    this.pendingLength = needed;
  }

  private finish(): void {
    this.state = 'passthrough';
    this.pending = new Uint8Array(0);
    this.pendingLength = 0;
  }

  private fail(reason: string): never {
    this.state = 'failed';
    this.failure = reason;
    this.pending = new Uint8Array(0);
    this.pendingLength = 0;
    throw new WavFormatError(reason);
  }
}

/** A decoded WAV file. */
export interface WavAudio {
  /** Frames per second (Hz). */
  sampleRate: number;
  /** Channel count; `samples` is interleaved. */
  channels: number;
  /** Interleaved signed 16-bit samples, `frames * channels` long. */
  samples: Int16Array;
}

function toInt16(data: Uint8Array, format: WavSampleFormat): Int16Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const clip = (v: number): number => (v > 32767 ? 32767 : v < -32768 ? -32768 : v);
  switch (format) {
    case 'pcm_s16le':
      return bytesToInt16LE(data);
    case 'pcm_u8':
      return Int16Array.from(data, (b) => (b - 128) << 8);
    case 'pcm_s24le':
      return Int16Array.from({ length: Math.floor(data.length / 3) }, (_, i) => {
        const v = (data[i * 3]! | (data[i * 3 + 1]! << 8) | (data[i * 3 + 2]! << 16)) << 8 >> 8;
        return clip(Math.round(v / 256));
      });
    case 'pcm_s32le':
      return Int16Array.from({ length: data.length >> 2 }, (_, i) => clip(Math.round(view.getInt32(i * 4, true) / 65536)));
    case 'float32':
      return float32ToInt16(Float32Array.from({ length: data.length >> 2 }, (_, i) => view.getFloat32(i * 4, true)));
    case 'mulaw':
      return decodeMulaw(data);
    case 'alaw':
      return decodeAlaw(data);
  }
}

/**
 * Reads and decodes a whole WAV file to interleaved int16 samples (u8, s24, s32, float32, μ-law and
 * A-law are converted; float is clipped to [-1, 1)). A truncated `data` chunk is read up to the
 * last whole frame; bytes after the `data` chunk are ignored.
 * Spec: protocols.md §1.7 (HTTP STT with a WAV file); also the CLI and tests.
 * @param path File path.
 * @throws WavFormatError if the file is not a WAV file, is invalid, or its header is truncated.
 * @throws The `fs` error if the file cannot be read.
 */
export async function readWavFile(path: string): Promise<WavAudio> {
  const file = await readFile(path);
  const header = parseWavHeader(file);
  if (header.kind === 'not_wav') throw new WavFormatError(`${path}: not a WAV file`);
  if (header.kind === 'need_more') throw new WavFormatError(`${path}: truncated WAV header`);
  if (header.kind === 'invalid') throw new WavFormatError(`${path}: ${header.reason}`);
  const available = file.length - header.dataOffset;
  const frameBytes = header.channels * (header.bitsPerSample / 8);
  const length = Math.min(header.dataLength ?? available, available);
  const data = file.subarray(header.dataOffset, header.dataOffset + length - (length % frameBytes));
  return { sampleRate: header.sampleRate, channels: header.channels, samples: toInt16(data, header.format) };
}

/**
 * Encodes int16 PCM as a canonical 44-byte-header WAV file (`WAVE_FORMAT_PCM`, 16-bit).
 * Spec: protocols.md §1.7 (TTS HTTP responses saved as `.wav`); also the CLI and tests.
 * @param samples Interleaved samples, `frames * channels` long.
 * @param sampleRate Frames per second (Hz, positive integer).
 * @param channels Channel count (positive integer).
 * @returns The whole file.
 * @throws RangeError on a non-positive rate or channel count, or a length that is not whole frames.
 */
export function encodeWav(samples: Int16Array, sampleRate: number, channels: number): Buffer {
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw new RangeError(`invalid sample rate ${sampleRate}`);
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`invalid channel count ${channels}`);
  if (samples.length % channels !== 0) throw new RangeError(`${samples.length} samples is not whole ${channels}-channel frames`);
  const dataBytes = samples.length * 2;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(WAVE_FORMAT_PCM, 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(dataBytes, 40);
  return Buffer.concat([header, int16ToBytesLE(samples)]);
}
