/**
 * ITU-T G.711 companding: μ-law (North America/Japan) and A-law (elsewhere), one byte per sample.
 *
 * Decoding uses 256-entry lookup tables; encoding follows the bit manipulations of the ITU-T G.191
 * reference `g711.c` (negative samples use one's complement, so -1 encodes as negative zero,
 * and below saturation every error is at most half a quantisation step). Linear samples are
 * signed 16-bit (`Int16Array`), whatever the sample rate (G.711 itself is rate-agnostic; it is
 * normally 8000 Hz).
 *
 * Serves shared/spec/protocols.md §2.2 and §4.1 (`encoding=mulaw|alaw` input) and §1.5 / §3
 * (`mulaw`/`alaw` TTS output encodings).
 */

const SIGN_BIT = 0x80;
const QUANT_MASK = 0x0f;
const SEG_SHIFT = 4;
const SEG_MASK = 0x70;
const ULAW_BIAS = 0x84;
/** μ-law segment end points on the 14-bit scale (after `>> 2` and the added bias). */
const SEG_UEND = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
/** A-law segment end points on the 13-bit scale (after `>> 3`). */
const SEG_AEND = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function segment(value: number, ends: readonly number[]): number {
  for (let i = 0; i < ends.length; i++) if (value <= ends[i]!) return i;
  return ends.length;
}

function ulawByteToLinear(code: number): number {
  const u = ~code & 0xff;
  const t = (((u & QUANT_MASK) << 3) + ULAW_BIAS) << ((u & SEG_MASK) >> SEG_SHIFT);
  return u & SIGN_BIT ? ULAW_BIAS - t : t - ULAW_BIAS;
}

function alawByteToLinear(code: number): number {
  const a = code ^ 0x55;
  let t = (a & QUANT_MASK) << 4;
  const seg = (a & SEG_MASK) >> SEG_SHIFT;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & SIGN_BIT ? t : -t;
}

const ULAW_TABLE = Int16Array.from({ length: 256 }, (_, code) => ulawByteToLinear(code));
const ALAW_TABLE = Int16Array.from({ length: 256 }, (_, code) => alawByteToLinear(code));

/**
 * Decodes G.711 μ-law bytes to linear PCM.
 * Spec: protocols.md §2.2 / §4.1 (`encoding=mulaw` client audio).
 * @param bytes One μ-law code per sample (any length, any alignment).
 * @returns A new `Int16Array` with one signed 16-bit sample per input byte, range ±32124.
 */
export function decodeMulaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = ULAW_TABLE[bytes[i]!]!;
  return out;
}

/**
 * Decodes G.711 A-law bytes to linear PCM.
 * Spec: protocols.md §2.2 / §4.1 (`encoding=alaw` client audio).
 * @param bytes One A-law code per sample (any length, any alignment).
 * @returns A new `Int16Array` with one signed 16-bit sample per input byte, range ±32256.
 */
export function decodeAlaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = ALAW_TABLE[bytes[i]!]!;
  return out;
}

/**
 * Encodes linear PCM to G.711 μ-law (values beyond ±32635 saturate to the largest code).
 * Spec: protocols.md §1.5 / §3 (`mulaw` TTS output).
 * @param samples Signed 16-bit samples.
 * @returns A new `Uint8Array`, one μ-law code per sample. Silence (0) encodes as `0xFF`.
 */
export function encodeMulaw(samples: Int16Array): Uint8Array {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let v = samples[i]! >> 2;
    let mask = 0xff;
    if (v < 0) {
      v = ~v; // one's complement, as ITU-T G.191: -1 encodes as negative zero (0x7F)
      mask = 0x7f;
    }
    v = Math.min(v, 8159) + (ULAW_BIAS >> 2);
    const seg = segment(v, SEG_UEND);
    out[i] = seg >= 8 ? 0x7f ^ mask : ((seg << SEG_SHIFT) | ((v >> (seg + 1)) & QUANT_MASK)) ^ mask;
  }
  return out;
}

/**
 * Encodes linear PCM to G.711 A-law (even-bit inversion included, as transmitted on the wire).
 * Spec: protocols.md §1.5 / §3 (`alaw` TTS output).
 * @param samples Signed 16-bit samples.
 * @returns A new `Uint8Array`, one A-law code per sample. Silence (0) encodes as `0xD5`.
 */
export function encodeAlaw(samples: Int16Array): Uint8Array {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let v = samples[i]! >> 3;
    let mask = 0xd5;
    if (v < 0) {
      mask = 0x55;
      v = ~v;
    }
    const seg = segment(v, SEG_AEND);
    if (seg >= 8) {
      out[i] = 0x7f ^ mask;
    } else {
      const quant = seg < 2 ? (v >> 1) & QUANT_MASK : (v >> seg) & QUANT_MASK;
      out[i] = ((seg << SEG_SHIFT) | quant) ^ mask;
    }
  }
  return out;
}
