/**
 * Linear PCM helpers: byte ↔ sample conversion, channel down-mixing and int16 ↔ float32 scaling.
 *
 * Conventions: "samples" are signed 16-bit values in an `Int16Array`; interleaved multi-channel
 * data stores frame `i`, channel `c` at index `i * channels + c`; float samples are in [-1, 1)
 * with `float = int16 / 32768`.
 *
 * Serves shared/spec/protocols.md §1.3 / §2.2 / §4.1 (`linear16` binary audio frames, `channels`).
 */

/**
 * Reads little-endian signed 16-bit samples from bytes (`linear16` / `pcm_s16le`).
 *
 * Works for any `byteOffset` of the underlying `ArrayBuffer` (WebSocket frames and `Buffer` slices
 * are often at odd offsets) and on big-endian hosts: it always copies, never returns a view.
 * Spec: protocols.md §1.3 / §2.3 (binary `linear16` audio frames).
 * @param bytes An even number of bytes.
 * @returns A new `Int16Array` of `bytes.length / 2` samples.
 * @throws RangeError if `bytes.length` is odd (the caller must carry the odd byte to the next frame).
 */
export function bytesToInt16LE(bytes: Uint8Array): Int16Array {
  if (bytes.length % 2 !== 0) throw new RangeError(`odd byte count ${bytes.length} for 16-bit PCM`);
  const out = new Int16Array(bytes.length >> 1);
  for (let i = 0, j = 0; i < out.length; i++, j += 2) out[i] = (bytes[j]! | (bytes[j + 1]! << 8)) << 16 >> 16;
  return out;
}

/**
 * Encodes signed 16-bit samples as little-endian bytes (`linear16`).
 * Spec: protocols.md §1.5 / §3 (`linear16` TTS audio frames).
 * @param samples Samples to encode.
 * @returns A new `Buffer` of `samples.length * 2` bytes.
 */
export function int16ToBytesLE(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, i * 2);
  return out;
}

/**
 * Mixes interleaved multi-channel PCM to mono by averaging the channels of each frame (rounded to
 * nearest). This cannot clip, unlike summing.
 * Spec: protocols.md §2.2 (`channels`), §1.3 extra `channels` key.
 * @param interleaved Interleaved samples, `frames * channels` long.
 * @param channels Channel count (positive integer).
 * @returns A new `Int16Array` of `interleaved.length / channels` samples, or `interleaved` itself when `channels === 1`.
 * @throws RangeError if `channels` is not a positive integer or the length is not a multiple of it.
 */
export function downmix(interleaved: Int16Array, channels: number): Int16Array {
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`invalid channel count ${channels}`);
  if (interleaved.length % channels !== 0) {
    throw new RangeError(`${interleaved.length} samples is not a whole number of ${channels}-channel frames`);
  }
  if (channels === 1) return interleaved;
  const out = new Int16Array(interleaved.length / channels);
  for (let i = 0, j = 0; i < out.length; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += interleaved[j++]!;
    out[i] = Math.round(sum / channels);
  }
  return out;
}

/**
 * Scales int16 samples to float32 in [-1, 1) (`x / 32768`, exact).
 * @returns A new `Float32Array` of the same length.
 * Used to feed the VAD (float input).
 */
export function int16ToFloat32(samples: Int16Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! / 32768;
  return out;
}

/**
 * Scales float samples to int16 (`round(x * 32768)`), clipping to [-32768, 32767]; NaN becomes 0.
 * Inverse of {@link int16ToFloat32} for every int16 value.
 * @returns A new `Int16Array` of the same length.
 * Used for float32 WAV data and float engine output.
 */
export function float32ToInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.round(samples[i]! * 32768);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v || 0;
  }
  return out;
}

/**
 * Splits interleaved multi-channel PCM into one array per channel (Deepgram `multichannel=true`, §2.2).
 * @param interleaved Interleaved samples, `frames * channels` long.
 * @param channels Channel count (positive integer).
 * @returns `channels` new arrays of `interleaved.length / channels` samples each.
 * @throws RangeError if `channels` is not a positive integer or the length is not a multiple of it.
 */
export function deinterleave(interleaved: Int16Array, channels: number): Int16Array[] {
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`invalid channel count ${channels}`);
  if (interleaved.length % channels !== 0) {
    throw new RangeError(`${interleaved.length} samples is not a whole number of ${channels}-channel frames`);
  }
  const frames = interleaved.length / channels;
  const out = Array.from({ length: channels }, () => new Int16Array(frames));
  for (let i = 0, j = 0; i < frames; i++) for (let c = 0; c < channels; c++) out[c]![i] = interleaved[j++]!;
  return out;
}

/**
 * Interleaves per-channel PCM (the inverse of {@link deinterleave}). Arrays of unequal length are
 * cut to the shortest.
 * @returns A new array of `min(length) * channels.length` samples.
 */
export function interleave(channels: Int16Array[]): Int16Array {
  const n = channels.length;
  const frames = Math.min(...channels.map((c) => c.length));
  const out = new Int16Array(frames * n);
  for (let i = 0, j = 0; i < frames; i++) for (let c = 0; c < n; c++) out[j++] = channels[c]![i]!;
  return out;
}
