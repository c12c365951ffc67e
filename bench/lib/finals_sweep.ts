/**
 * The lost-finals sweep (issue 9 §1): stream clips through a speech-to-text engine and check that no
 * final carries fewer words than its partials showed. Shared by test/lost_finals.test.ts (a fast
 * subset) and bench/finals.ts (the full sweep).
 *
 * A *run* is one clip with `leadMs` of digital silence before it and {@link TRAILING_SILENCE_MS} after
 * it, streamed with one endpointing setting at one pace, then `close()`d. An *utterance* is identified
 * by its start time: partials and the final of one utterance carry the same `start` (seconds).
 * A run is **lost** when
 *   - its finals together carry fewer than half the words of its longest partial, or
 *   - some utterance with a non-empty partial gets no final, or a final with fewer than half the words
 *     of that utterance's longest partial (a whole phrase dropped).
 * `wordsLost` counts, over the failing utterances, the words of the longest partial the final lacks.
 */
import type { SttEngine, SttFinal, SttPartial } from '../../src/engines/stt/types.js';

/** 16 kHz: the engines' input rate and the clips' rate. */
export const SWEEP_RATE = 16000;
/** Digital silence after each clip, ms (enough for the longest endpointing swept). */
export const TRAILING_SILENCE_MS = 2000;
/** Real-time pace: chunk length, ms. */
export const CHUNK_MS = 20;

/** How audio is delivered. `fast`: all at once (deterministic); `realtime`: 20 ms chunks on the wall clock. */
export type Pace = 'fast' | 'realtime';

/** One sweep case. */
export interface SweepCase {
  /** Clip name (for reports). */
  clip: string;
  /** Digital silence before the clip, ms. */
  leadMs: number;
  /** Endpointing, ms. */
  endpointingMs: number;
  pace: Pace;
}

/** What one utterance showed and what its final carried. */
export interface UtteranceOutcome {
  /** Seconds from stream start. */
  start: number;
  /** Words of its longest partial. */
  partialWords: number;
  /** Words of its final(s); `null` when no final came. */
  finalWords: number | null;
  /** The longest partial's text. */
  partial: string;
  /** The final's text ('' when none). */
  final: string;
}

/** The outcome of one run. */
export interface RunOutcome extends SweepCase {
  /** Words of the longest partial of the run. */
  longestPartialWords: number;
  /** Words of all finals of the run. */
  finalWords: number;
  utterances: UtteranceOutcome[];
  /** See the module documentation. */
  lost: boolean;
  /** Words shown in partials that the finals lack, over the failing utterances (0 when not lost). */
  wordsLost: number;
  /** Why the run is lost ('' when it is not). */
  reason: string;
}

const countWords = (t: string): number => t.split(/\s+/).filter(Boolean).length;

/** Pad `pcm` with `leadMs` of silence before and {@link TRAILING_SILENCE_MS} after. */
export function padClip(pcm: Int16Array, leadMs: number): Int16Array {
  const lead = Math.round((leadMs * SWEEP_RATE) / 1000);
  const out = new Int16Array(lead + pcm.length + Math.round((TRAILING_SILENCE_MS * SWEEP_RATE) / 1000));
  out.set(pcm, lead);
  return out;
}

/**
 * Judge a run from its events (pure).
 * @param partials every partial event, in order; @param finals every final event, in order.
 */
export function judgeRun(c: SweepCase, partials: readonly Pick<SttPartial, 'transcript' | 'start'>[], finals: readonly Pick<SttFinal, 'transcript' | 'start'>[]): RunOutcome {
  const byStart = new Map<number, UtteranceOutcome>();
  const key = (s: number): number => Math.round(s * 1000);
  let longestPartialWords = 0;
  for (const p of partials) {
    const n = countWords(p.transcript);
    longestPartialWords = Math.max(longestPartialWords, n);
    if (n === 0) continue;
    const u = byStart.get(key(p.start)) ?? { start: p.start, partialWords: 0, finalWords: null, partial: '', final: '' };
    if (n >= u.partialWords) {
      u.partialWords = n;
      u.partial = p.transcript;
    }
    byStart.set(key(p.start), u);
  }
  let finalWords = 0;
  for (const f of finals) {
    const n = countWords(f.transcript);
    finalWords += n;
    const u = byStart.get(key(f.start));
    if (!u) continue;
    u.finalWords = (u.finalWords ?? 0) + n;
    u.final = [u.final, f.transcript].filter(Boolean).join(' ');
  }
  const utterances = [...byStart.values()];
  const reasons: string[] = [];
  let wordsLost = 0;
  for (const u of utterances) {
    if (u.finalWords === null) {
      reasons.push(`utterance at ${u.start.toFixed(2)} s ("${u.partial}") got no final`);
      wordsLost += u.partialWords;
    } else if (u.finalWords < u.partialWords / 2) {
      reasons.push(`utterance at ${u.start.toFixed(2)} s: final "${u.final}" (${u.finalWords} words) < half of partial "${u.partial}" (${u.partialWords})`);
      wordsLost += u.partialWords - u.finalWords;
    }
  }
  if (finalWords < longestPartialWords / 2 && reasons.length === 0) {
    reasons.push(`finals carry ${finalWords} words < half of the longest partial (${longestPartialWords})`);
    wordsLost += longestPartialWords - finalWords;
  }
  return { ...c, longestPartialWords, finalWords, utterances, lost: reasons.length > 0, wordsLost, reason: reasons.join('; ') };
}

/**
 * Stream one padded clip through `engine` (VAD on, partials and word timestamps on) and judge it.
 * `fast` writes everything in one call, then closes: the segmentation then never depends on how
 * quickly the decoder answers, so the run is deterministic. `realtime` writes {@link CHUNK_MS} chunks
 * against the wall clock.
 */
export async function runEngineCase(engine: SttEngine, clipPcm: Int16Array, c: SweepCase): Promise<RunOutcome> {
  const pcm = padClip(clipPcm, c.leadMs);
  const stream = await engine.start({ language: 'en', partials: true, wordTimestamps: true, vad: true, endpointingMs: c.endpointingMs });
  const partials: SttPartial[] = [];
  const finals: SttFinal[] = [];
  stream.on('partial', (p) => partials.push(p));
  stream.on('final', (f) => finals.push(f));
  let failure: Error | null = null;
  stream.on('error', (e) => (failure = e));
  if (c.pace === 'fast') {
    stream.write(pcm);
  } else {
    const chunk = (CHUNK_MS * SWEEP_RATE) / 1000;
    const t0 = performance.now();
    for (let i = 0, k = 1; i < pcm.length; i += chunk, k++) {
      stream.write(pcm.subarray(i, i + chunk));
      const wait = t0 + k * CHUNK_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
  await stream.close();
  if (failure) throw failure;
  return judgeRun(c, partials, finals);
}

/** Totals over runs, as written to bench/results/finals.json. */
export interface SweepSummary {
  runs: number;
  lostRuns: number;
  wordsLost: number;
}

/** Sum up runs. */
export function summarize(runs: readonly RunOutcome[]): SweepSummary {
  return { runs: runs.length, lostRuns: runs.filter((r) => r.lost).length, wordsLost: runs.reduce((s, r) => s + r.wordsLost, 0) };
}
