/**
 * AudioWorklet processor `voxgate-capture`: microphone audio → mono linear16 at 16 kHz, in 20 ms
 * chunks, posted to the main thread (which sends each as one binary frame, protocols.md §1.3).
 *
 * Conversion, per 128-frame render quantum: downmix to mono (mean of channels), float → int16
 * (clipped), then the project's own streaming polyphase resampler (src/audio/resample.ts: Kaiser
 * windowed-sinc low-pass at 0.43–0.5 × 16 kHz with ≥ 80 dB stopband before decimation, so nothing
 * above 8 kHz aliases into the band; its output does not depend on how input is chunked).
 *
 * Messages to the main thread: `{ pcm: ArrayBuffer (int16 LE, 320 samples), rms: number (dBFS) }`
 * per chunk; after `{ type: 'stop' }` from the main thread, the resampler tail and the partial last
 * chunk, then `{ done: true }`.
 */
import { Resampler } from '../../src/audio/resample.js';

// AudioWorkletGlobalScope (not in TypeScript's DOM lib).
declare const sampleRate: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: unknown);
}
declare function registerProcessor(name: string, ctor: new (options?: unknown) => AudioWorkletProcessor): void;

/** Output rate of the capture (Hz): what `init.sample_rate` declares. */
const TARGET_RATE = 16000;
/** Samples per posted chunk: 20 ms at 16 kHz. */
const CHUNK = 320;

class CaptureProcessor extends AudioWorkletProcessor {
  private readonly resampler = new Resampler(Math.round(sampleRate), TARGET_RATE);
  private chunk = new Int16Array(CHUNK);
  private filled = 0;
  private stopped = false;
  private mono = new Int16Array(128);

  constructor(options?: unknown) {
    super(options);
    this.port.onmessage = (e: MessageEvent<{ type: string }>) => {
      if (e.data?.type !== 'stop' || this.stopped) return;
      this.stopped = true;
      this.push(this.resampler.flush());
      if (this.filled > 0) this.post(this.chunk.slice(0, this.filled));
      this.filled = 0;
      this.port.postMessage({ done: true });
    };
  }

  process(inputs: Float32Array[][]): boolean {
    if (this.stopped) return false;
    const channels = inputs[0];
    if (!channels || channels.length === 0 || !channels[0]) return true; // input not connected yet
    const n = channels[0].length;
    if (this.mono.length !== n) this.mono = new Int16Array(n);
    const k = channels.length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += channels[c]![i]!;
      const v = Math.round((s / k) * 32767);
      this.mono[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    this.push(this.resampler.process(this.mono));
    return true;
  }

  /** Append resampled samples, posting every complete chunk. */
  private push(x: Int16Array): void {
    let off = 0;
    while (off < x.length) {
      const take = Math.min(CHUNK - this.filled, x.length - off);
      this.chunk.set(x.subarray(off, off + take), this.filled);
      this.filled += take;
      off += take;
      if (this.filled === CHUNK) {
        this.post(this.chunk);
        this.chunk = new Int16Array(CHUNK);
        this.filled = 0;
      }
    }
  }

  private post(samples: Int16Array): void {
    let sum = 0;
    for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
    const rms = samples.length ? Math.sqrt(sum / samples.length) / 32768 : 0;
    const dbfs = rms > 0 ? 20 * Math.log10(rms) : -120;
    const buf = samples.buffer.byteLength === samples.byteLength ? samples.buffer : samples.slice().buffer;
    this.port.postMessage({ pcm: buf, rms: dbfs }, [buf as ArrayBuffer]);
  }
}

registerProcessor('voxgate-capture', CaptureProcessor);
