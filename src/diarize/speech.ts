/**
 * Speech regions for offline diarization: Silero VAD v5 (src/audio/vad.ts, the model the product
 * ships through `@ricky0123/vad-web`, shared/spec/engines.md §1/§4) at 16 kHz, or an energy
 * detector when Silero is unavailable (other sample rates, model missing).
 */
import { SileroVad, VAD_SAMPLE_RATE, VAD_WINDOW_SAMPLES } from '../audio/vad.js';

/** A speech region, seconds [start, end). */
export interface Region {
  start: number;
  end: number;
}

const sileros = new Map<number, SileroVad | null>();

/** The module's Silero detector for a threshold (created once; null if it cannot be loaded). Synchronous users only. */
function sharedSilero(threshold: number): SileroVad | null {
  let v = sileros.get(threshold);
  if (v === undefined) {
    try {
      v = new SileroVad({ threshold, minSpeechMs: 100, minSilenceMs: 100 });
    } catch {
      v = null;
    }
    sileros.set(threshold, v);
  }
  return v;
}

/**
 * Speech regions of a whole recording with Silero VAD; `null` if Silero cannot run (rate ≠ 16 kHz
 * or the model cannot be loaded). `threshold` is Silero's speech probability threshold in (0, 1). Onset delay and hangover of the detector are subtracted.
 */
export function sileroRegions(pcm: Int16Array, sampleRate: number, threshold = 0.5): Region[] | null {
  if (sampleRate !== VAD_SAMPLE_RATE) return null;
  const vad = sharedSilero(threshold);
  if (!vad) return null;
  vad.reset();
  const out: Region[] = [];
  const win = new Float32Array(VAD_WINDOW_SAMPLES);
  let start = -1;
  const W = VAD_WINDOW_SAMPLES;
  const windows = Math.ceil(pcm.length / W);
  for (let w = 0; w < windows; w++) {
    win.fill(0);
    for (let i = 0; i < W && w * W + i < pcm.length; i++) win[i] = pcm[w * W + i]! / 32768;
    const on = vad.acceptWindow(win);
    const endSample = (w + 1) * W;
    if (on && start < 0) start = Math.max(0, endSample - (vad.onsetDelayMs * sampleRate) / 1000);
    else if (!on && start >= 0) {
      const end = Math.max(start, endSample - (vad.hangoverMs * sampleRate) / 1000);
      if (end > start) out.push({ start: start / sampleRate, end: end / sampleRate });
      start = -1;
    }
  }
  if (start >= 0) out.push({ start: start / sampleRate, end: pcm.length / sampleRate });
  vad.reset();
  return out;
}

/**
 * Energy speech detector over per-frame log energies (natural log, see mfcc.ts `Frames.energy`):
 * a frame is speech when it is ≥ 2.3 nats (10 dB) above the recording's 10th-percentile energy and
 * above an absolute floor of −60 dBFS-ish; runs shorter than `minSpeechS` are dropped and gaps
 * shorter than `minGapS` are filled.
 */
export function energyRegions(energy: Float32Array, hopS: number, minSpeechS = 0.15, minGapS = 0.3): Region[] {
  const n = energy.length;
  if (n === 0) return [];
  const sorted = Float32Array.from(energy).sort();
  const floor = sorted[Math.floor(0.1 * (n - 1))]!;
  const thr = Math.max(floor + 2.3, Math.log(1e-6 * 400));
  const raw: Region[] = [];
  let s = -1;
  for (let f = 0; f <= n; f++) {
    const on = f < n && energy[f]! >= thr;
    if (on && s < 0) s = f;
    else if (!on && s >= 0) {
      raw.push({ start: s * hopS, end: f * hopS });
      s = -1;
    }
  }
  const merged: Region[] = [];
  for (const r of raw) {
    const last = merged[merged.length - 1];
    if (last && r.start - last.end < minGapS) last.end = r.end;
    else merged.push({ ...r });
  }
  return merged.filter((r) => r.end - r.start >= minSpeechS);
}
