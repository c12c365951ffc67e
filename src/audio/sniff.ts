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

/**
 * Follows the Ogg pages of an Ogg/Opus byte stream as it is written (RFC 3533 page headers,
 * RFC 7845 `OpusHead`) and reports how much audio the complete pages hold — so a flush can wait for
 * exactly that much PCM instead of guessing. Non-Opus Ogg streams (FLAC, Vorbis) report null.
 */
export class OggOpusTracker {
  /** Bytes of a page header (and, for the first page, the start of its body) not yet complete. */
  private buf: Uint8Array = new Uint8Array(0);
  /** Body bytes of the current page still to come. */
  private skip = 0;
  /** Granule position of the page whose body is still coming. */
  private pendingGranule = -1;
  private preSkip: number | null = null;
  private granule = -1;
  private broken = false;

  /** Feed the next bytes of the stream (any split). Never throws; malformed data stops tracking. */
  push(chunk: Uint8Array): void {
    let data = chunk;
    while (data.length > 0 && !this.broken) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length);
        this.skip -= n;
        data = data.subarray(n);
        if (this.skip === 0 && this.pendingGranule >= 0) this.granule = this.pendingGranule;
        continue;
      }
      const all = new Uint8Array(this.buf.length + data.length);
      all.set(this.buf);
      all.set(data, this.buf.length);
      data = new Uint8Array(0);
      this.buf = this.parse(all);
    }
  }

  /** Parse complete pages from `all`; returns the incomplete rest (or sets `skip` for a body in flight). */
  private parse(all: Uint8Array): Uint8Array {
    let at = 0;
    while (all.length - at >= 27) {
      if (all[at] !== 0x4f || all[at + 1] !== 0x67 || all[at + 2] !== 0x67 || all[at + 3] !== 0x53) {
        this.broken = true;
        return new Uint8Array(0);
      }
      const nseg = all[at + 26]!;
      if (all.length - at < 27 + nseg) break;
      let body = 0;
      for (let i = 0; i < nseg; i++) body += all[at + 27 + i]!;
      const granule = Number(new DataView(all.buffer, all.byteOffset + at + 6, 8).getBigInt64(0, true));
      const bodyAt = at + 27 + nseg;
      if (this.preSkip === null) {
        // The first page carries OpusHead; its pre-skip is the LE16 at body offset 10.
        if (all.length - bodyAt < Math.min(12, body)) break;
        if (body < 12 || String.fromCharCode(...all.subarray(bodyAt, bodyAt + 8)) !== 'OpusHead') {
          this.broken = true;
          return new Uint8Array(0);
        }
        this.preSkip = all[bodyAt + 10]! | (all[bodyAt + 11]! << 8);
      }
      const available = all.length - bodyAt;
      if (available < body) {
        this.skip = body - available;
        this.pendingGranule = granule;
        return new Uint8Array(0);
      }
      if (granule >= 0) this.granule = granule;
      at = bodyAt + body;
    }
    return all.slice(at);
  }

  /** Seconds of audio in the complete pages so far (granule − pre-skip, at 48 kHz), or null when unknown. */
  get completeSeconds(): number | null {
    if (this.broken || this.preSkip === null || this.granule < 0) return null;
    return Math.max(0, this.granule - this.preSkip) / 48000;
  }
}
