/**
 * Words and confidence for interim results (issue 9 §3; shared/spec/protocols.md §2.4: every
 * `Results` alternative carries `transcript`, `confidence` and `words[]` with `word/start/end/confidence`,
 * interims included — Deepgram sends the interim's words with times).
 *
 * An engine may attach words (and a confidence) to a partial ({@link SttPartial.words}); they are used
 * as they are. Otherwise the words are derived from the partial's transcript: one entry per
 * whitespace-separated token, the partial's time span [start, start + duration] shared among them in
 * proportion to their length in characters. A derived confidence is {@link DERIVED_INTERIM_CONFIDENCE}.
 * So an interim with text never has `words: []` or `confidence: 0`.
 */
import type { SttPartial, SttWord } from '../engines/stt/types.js';

/**
 * Confidence reported for an interim when the engine gives none, in [0, 1]: a neutral mid value —
 * an interim is by definition provisional, and 0 reads as "certainly wrong" to clients that filter on it.
 */
export const DERIVED_INTERIM_CONFIDENCE = 0.5;

/** An interim's words and utterance-level confidence; times in seconds from stream start. */
export interface InterimWords {
  words: SttWord[];
  /** In [0, 1]. */
  confidence: number;
}

/**
 * The words and confidence to report for a partial (module docs).
 * @param p the engine's partial; `start`/`duration` in seconds.
 * @returns engine words when present and non-empty, else words spread over the partial's span;
 *   `confidence` is the partial's own, else the mean of engine word confidences, else
 *   {@link DERIVED_INTERIM_CONFIDENCE}. Empty transcript → no words.
 */
export function interimWords(p: SttPartial): InterimWords {
  const clamp = (x: number): number => Math.min(1, Math.max(0, x));
  if (p.words && p.words.length > 0) {
    const mean = p.words.reduce((s, w) => s + w.confidence, 0) / p.words.length;
    return { words: p.words, confidence: clamp(p.confidence ?? mean) };
  }
  const tokens = p.transcript.split(/\s+/).filter(Boolean);
  const confidence = clamp(p.confidence ?? DERIVED_INTERIM_CONFIDENCE);
  if (tokens.length === 0) return { words: [], confidence };
  const start = Math.max(0, p.start);
  const span = Math.max(0, p.duration);
  const chars = tokens.reduce((n, t) => n + t.length, 0);
  let at = start;
  const words = tokens.map((word, i) => {
    const end = i === tokens.length - 1 ? start + span : at + (span * word.length) / chars;
    const w: SttWord = { word, start: at, end, confidence };
    at = end;
    return w;
  });
  return { words, confidence };
}
