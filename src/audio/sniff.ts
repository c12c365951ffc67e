/**
 * Container sniffing from the first bytes of an audio stream (pure; no I/O).
 *
 * Used by the PCM decoder (`decoder.ts`) to (1) pick a demuxer for `encoding=auto` uploads and for
 * Deepgram's "omit `encoding` for containerised audio" (shared/spec/protocols.md §2.2), (2) tell
 * Ogg/Opus from WebM/Opus when a client declares `opus`, and (3) reject undecodable input at once:
 * random bytes declared as `opus` would otherwise keep an Ogg demuxer searching for a page header
 * until end of stream. Also decides whether an MP4/M4A can be decoded from a pipe: only when its
 * `moov` box precedes `mdat` ("fast start", or fragmented MP4 as Safari records it).
 */

/** Containers (and bare elementary streams) the decoder can handle. */
export type ContainerKind = 'wav' | 'ogg' | 'webm' | 'mp3' | 'flac' | 'mp4' | 'aac';

/** Result of {@link sniffContainer}. */
export type SniffOutcome =
  | { kind: ContainerKind }
  /** Too few bytes to decide; give more (never more than {@link SNIFF_MAX_BYTES} are needed). */
  | { kind: 'need_more' }
  /** None of the known signatures. */
  | { kind: 'unknown' };

/** Bytes after which {@link sniffContainer} always decides (an ID3v2 tag is skipped separately). */
export const SNIFF_MAX_BYTES = 12;

const ascii = (b: Uint8Array, at: number, s: string): boolean => {
  if (b.length < at + s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  return true;
};

/** Bitrate table index 0b1111 and sample-rate index 0b11 are invalid; layer 0b00 is reserved. */
function isMpegAudioFrameHeader(b: Uint8Array, at: number): boolean {
  if (b.length < at + 4) return false;
  const b1 = b[at + 1]!;
  const b2 = b[at + 2]!;
  if (b[at] !== 0xff || (b1 & 0xe0) !== 0xe0) return false;
  const version = (b1 >> 3) & 3; // 01 reserved
  const layer = (b1 >> 1) & 3; // 00 reserved
  const bitrate = b2 >> 4;
  const rate = (b2 >> 2) & 3;
  return version !== 1 && layer !== 0 && bitrate !== 0xf && bitrate !== 0 && rate !== 3;
}

/** ADTS (raw AAC) header: 12-bit sync 0xFFF with layer bits 00. */
function isAdtsHeader(b: Uint8Array, at: number): boolean {
  return b.length >= at + 2 && b[at] === 0xff && (b[at + 1]! & 0xf6) === 0xf0;
}

/**
 * Identify the container of a stream from its first bytes.
 * An ID3v2 tag (MP3 metadata) is recognised by its own magic and reported as `mp3`.
 * @param head The first bytes of the stream (any length).
 */
export function sniffContainer(head: Uint8Array): SniffOutcome {
  if (head.length < 4) return { kind: 'need_more' };
  if (ascii(head, 0, 'OggS')) return { kind: 'ogg' };
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return { kind: 'webm' };
  if (ascii(head, 0, 'fLaC')) return { kind: 'flac' };
  if (ascii(head, 0, 'ID3')) return { kind: 'mp3' };
  if (ascii(head, 0, 'RIFF') || ascii(head, 0, 'RIFX') || ascii(head, 0, 'RF64')) return { kind: 'wav' };
  if (isMpegAudioFrameHeader(head, 0)) return { kind: 'mp3' };
  if (isAdtsHeader(head, 0)) return { kind: 'aac' };
  if (head.length < 8) return { kind: 'need_more' };
  if (ascii(head, 4, 'ftyp')) return { kind: 'mp4' };
  return { kind: 'unknown' };
}

/** Result of {@link mp4Layout}. */
export type Mp4Layout =
  /** `moov` comes before `mdat`: decodable from a pipe. */
  | { kind: 'streamable' }
  /** `mdat` comes first: the index is at the end, so the file must be read whole (spooled) first. */
  | { kind: 'index_at_end' }
  | { kind: 'need_more' }
  /** Box structure is broken (size smaller than a box header). */
  | { kind: 'invalid'; reason: string };

/**
 * Walk the top-level ISO-BMFF boxes of an MP4/M4A stream prefix to see whether `moov` precedes
 * `mdat`. Needs only the box headers, not their contents.
 * @param head The first bytes of the stream.
 */
export function mp4Layout(head: Uint8Array): Mp4Layout {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let at = 0;
  for (;;) {
    if (head.length < at + 8) return { kind: 'need_more' };
    let size = view.getUint32(at);
    const type = String.fromCharCode(head[at + 4]!, head[at + 5]!, head[at + 6]!, head[at + 7]!);
    if (type === 'moov' || type === 'moof') return { kind: 'streamable' };
    if (type === 'mdat') return { kind: 'index_at_end' };
    if (size === 1) {
      if (head.length < at + 16) return { kind: 'need_more' };
      const big = view.getBigUint64(at + 8);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return { kind: 'invalid', reason: `box "${type}" is too large` };
      size = Number(big);
    } else if (size === 0) {
      return { kind: 'invalid', reason: `box "${type}" runs to end of file before any moov or mdat` };
    }
    if (size < 8) return { kind: 'invalid', reason: `box "${type}" has an impossible size ${size}` };
    at += size;
  }
}
