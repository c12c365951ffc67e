/**
 * Deepgram `/v1/speak` query parameters (shared/spec/protocols.md §3; REST additionally
 * `container` and `bit_rate`, from Deepgram's REST API as used by the official SDK).
 *
 * `model` is a *voice* name in Deepgram (`aura-asteria-en`, default). voxgate accepts its own
 * voice ids there (`kal16`, `slt`, `en-us`, `hi`, …) and maps every `aura-*-<lang>` name to a
 * voice for `<lang>` (see server/tts_routes.ts `resolveSpeakVoice`).
 */
import { VoxgateError } from '../../util/errors.js';

/** Deepgram's default `model` when the query names none. */
export const DEFAULT_SPEAK_MODEL = 'aura-asteria-en';

/** Deepgram's `speed` range on `/v1/speak` (protocols.md §3, D5: double, 0.7–1.5, default 1). */
export const SPEAK_SPEED_RANGE = { min: 0.7, max: 1.5 } as const;

/**
 * Enforce Deepgram's `speed` range (even where the engine could go further: a Deepgram client must
 * get what Deepgram would answer).
 * @param speed multiplier, or undefined (default 1).
 * @throws VoxgateError `config_error` (HTTP 400, Deepgram `INVALID_QUERY_PARAMETER`) outside 0.7–1.5.
 */
export function checkSpeakSpeed(speed: number | undefined): void {
  if (speed === undefined) return;
  if (!(speed >= SPEAK_SPEED_RANGE.min && speed <= SPEAK_SPEED_RANGE.max)) {
    throw new VoxgateError('config_error', `speed ${speed} is out of range; supported: ${SPEAK_SPEED_RANGE.min}–${SPEAK_SPEED_RANGE.max}`);
  }
}

/** Parsed `/v1/speak` query. Absent fields are left to defaults. */
export interface SpeakQuery {
  /** Voice name (`model`), default {@link DEFAULT_SPEAK_MODEL}. */
  model: string;
  encoding?: string;
  /** Hz. */
  sampleRate?: number;
  /** Multiplier. */
  speed?: number;
  /** REST only: `wav` | `none` | `ogg`. */
  container?: 'wav' | 'none' | 'ogg';
  /** voxgate extension `pacing=false`: no real-time pacing on the WebSocket. */
  pacing?: boolean;
}

function num(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new VoxgateError('config_error', `${name}=${JSON.stringify(v.slice(0, 40))} is not a number`);
  return n;
}

/**
 * Parse the query. Unknown parameters (`mip_opt_out`, `tag`, `bit_rate`, `callback`, …) are ignored.
 * @throws VoxgateError `config_error` for a non-numeric `sample_rate`/`speed`, a `speed` outside
 *   {@link SPEAK_SPEED_RANGE} or an unknown `container`.
 */
export function parseSpeakQuery(q: URLSearchParams): SpeakQuery {
  const container = q.get('container')?.toLowerCase() || undefined;
  if (container !== undefined && container !== 'wav' && container !== 'none' && container !== 'ogg') {
    throw new VoxgateError('config_error', `container=${JSON.stringify(container.slice(0, 40))} is not supported; use wav, none or ogg`);
  }
  const speed = num(q, 'speed');
  checkSpeakSpeed(speed);
  return {
    model: q.get('model')?.trim() || DEFAULT_SPEAK_MODEL,
    encoding: q.get('encoding')?.trim() || undefined,
    sampleRate: num(q, 'sample_rate'),
    speed,
    container,
    ...(q.get('pacing') === 'false' ? { pacing: false } : {}),
  };
}
