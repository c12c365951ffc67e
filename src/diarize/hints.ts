/**
 * Speaker-count hints of the wire dialects (issue 13 "Speaker-count hints"), parsed into the
 * dialect-neutral {@link DiarizeOptions} and validated once, so every dialect refuses a bad value the
 * same way (a `config_error` naming the parameter: HTTP 400 `INVALID_QUERY_PARAMETER` at the
 * `/v1/listen` upgrade or request, an `error` frame + close 1008 after a unified `init`).
 *
 * Names (which source each follows):
 * - `min_speakers` / `max_speakers`: the unified init keys the LiveKit SLNG plugin sends next to
 *   `enable_diarization` (shared/spec/protocols.md §1.3 "extra config keys", S6); also the names pyannote
 *   and several Deepgram client wrappers use. Accepted as `/v1/listen` query parameters too (Deepgram
 *   documents no count hint for streaming; unknown parameters are ignored by Deepgram, so clients can
 *   send them to either).
 * - `num_speakers`: the exact count (pyannote's name); `diarize_speakers` is accepted as its alias on
 *   `/v1/listen` (issue 13 names it as the Deepgram-style spelling).
 *
 * Ranges: integers 1–{@link MAX_SPEAKER_HINT}; `min_speakers ≤ max_speakers`; `num_speakers` inside
 * [min, max] when those are given too.
 */
import { VoxgateError } from '../util/errors.js';
import type { DiarizeOptions } from './types.js';

/** Largest speaker count a hint may give (AssemblyAI's documented cap of 10 speakers; beyond it a classical diarizer cannot separate voices). */
export const MAX_SPEAKER_HINT = 10;

/** The wire names of the three hints in one dialect (for error messages). */
export interface HintNames {
  numSpeakers: string;
  minSpeakers: string;
  maxSpeakers: string;
}

/** Names on `/v1/listen` and in the unified `init.config`. */
export const SNAKE_HINT_NAMES: HintNames = { numSpeakers: 'num_speakers', minSpeakers: 'min_speakers', maxSpeakers: 'max_speakers' };

/**
 * Check one hint value.
 * @param v the value as received (a query string or a JSON value); `undefined`/`null`/`''` = absent.
 * @returns the integer, or undefined when absent.
 * @throws VoxgateError `config_error` naming `name` when it is not an integer in 1–{@link MAX_SPEAKER_HINT}.
 */
export function speakerHint(name: string, v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SPEAKER_HINT) {
    throw new VoxgateError('config_error', `invalid value for ${name}: ${JSON.stringify(v).slice(0, 40)} (expected an integer 1–${MAX_SPEAKER_HINT})`);
  }
  return n;
}

/**
 * Check that the hints agree with each other.
 * @returns `o` unchanged (keys with undefined values removed).
 * @throws VoxgateError `config_error` when `min > max`, or `num` lies outside [min, max].
 */
export function checkDiarizeOptions(o: DiarizeOptions, names: HintNames = SNAKE_HINT_NAMES): DiarizeOptions {
  const out: DiarizeOptions = {};
  if (o.numSpeakers !== undefined) out.numSpeakers = o.numSpeakers;
  if (o.minSpeakers !== undefined) out.minSpeakers = o.minSpeakers;
  if (o.maxSpeakers !== undefined) out.maxSpeakers = o.maxSpeakers;
  if (out.minSpeakers !== undefined && out.maxSpeakers !== undefined && out.minSpeakers > out.maxSpeakers) {
    throw new VoxgateError('config_error', `invalid speaker hints: ${names.minSpeakers} (${out.minSpeakers}) is above ${names.maxSpeakers} (${out.maxSpeakers})`);
  }
  if (out.numSpeakers !== undefined) {
    if (out.minSpeakers !== undefined && out.numSpeakers < out.minSpeakers) {
      throw new VoxgateError('config_error', `invalid speaker hints: ${names.numSpeakers} (${out.numSpeakers}) is below ${names.minSpeakers} (${out.minSpeakers})`);
    }
    if (out.maxSpeakers !== undefined && out.numSpeakers > out.maxSpeakers) {
      throw new VoxgateError('config_error', `invalid speaker hints: ${names.numSpeakers} (${out.numSpeakers}) is above ${names.maxSpeakers} (${out.maxSpeakers})`);
    }
  }
  return out;
}
