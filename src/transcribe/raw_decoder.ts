/**
 * Interim file decoder for WAV and raw PCM/G.711 uploads (in-process, {@link AudioInput}); replaced
 * by `createPcmDecoder` from src/audio/decoder.ts when compressed input lands.
 */
import { EventEmitter } from 'node:events';
import { AudioInput, STREAM_ENCODINGS, type StreamEncoding } from '../audio/input.js';
import { VoxgateError, toVoxgateError } from '../util/errors.js';
import type { FileDecoder } from './prerecorded.js';

/** Options: encoding `auto` means "a WAV file". */
export interface RawFileDecoderOptions {
  encoding: string;
  sampleRate?: number;
  channels?: number;
  targetRate: number;
  outputChannels: 1 | 'keep';
}

/**
 * Create a file decoder for WAV (`auto`/`wav`/`linear16` with a RIFF header) or raw linear16/mulaw/alaw.
 * @throws VoxgateError `config_error` for an encoding it cannot decode.
 */
export function createRawFileDecoder(o: RawFileDecoderOptions): FileDecoder {
  const enc = ['auto', 'wav'].includes(o.encoding) ? 'linear16' : o.encoding;
  if (!(STREAM_ENCODINGS as readonly string[]).includes(enc)) throw new VoxgateError('config_error', `cannot decode "${o.encoding}" uploads yet; send WAV or raw linear16/mulaw/alaw`);
  const em = new EventEmitter() as FileDecoder;
  let channels = o.channels ?? 1;
  let input = new AudioInput({ encoding: enc as StreamEncoding, sampleRate: o.sampleRate ?? 16000, channels, targetRate: o.targetRate, keepChannels: o.outputChannels === 'keep' });
  let carry = Buffer.alloc(0);
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    em.emit('error', toVoxgateError(e));
  };
  Object.defineProperty(em, 'channels', { get: () => (o.outputChannels === 'keep' ? channels : 1) });
  em.write = (bytes) => {
    if (failed) return true;
    try {
      // Whole sample frames only (2 bytes × 8 channels covers every layout); the rest carries over.
      const all = carry.length ? Buffer.concat([carry, bytes]) : Buffer.from(bytes);
      const whole = all.length - (all.length % 16);
      carry = all.subarray(whole);
      if (whole === 0) return true;
      const chunk = input.push(all.subarray(0, whole));
      if (chunk.wavHeader) {
        channels = chunk.wavHeader.channels;
        em.emit('format', { channels, sampleRate: chunk.wavHeader.sampleRate });
      }
      if (chunk.pcm.length) em.emit('pcm', chunk.pcm);
    } catch (e) {
      fail(e);
    }
    return true;
  };
  em.end = async () => {
    if (failed) return;
    try {
      if (carry.length) {
        const n = carry.length - (carry.length % (2 * channels));
        if (n > 0) {
          const c = input.push(carry.subarray(0, n));
          if (c.pcm.length) em.emit('pcm', c.pcm);
        }
      }
      const tail = input.flush();
      if (tail.length) em.emit('pcm', tail);
    } catch (e) {
      fail(e);
    }
  };
  em.abort = () => {
    failed = true;
    input = null as unknown as AudioInput;
  };
  return em;
}
