/**
 * smallest.ai Waves streaming STT: Lightning (`/api/v1/lightning/get_text`,
 * `/waves/v1/lightning/get_text`) and its successor Pulse (`/waves/v1/pulse/get_text`),
 * shared/spec/protocols.md §4.1–4.2.
 *
 * - Configuration is by query string ({@link parseSmallestQuery}); there is no `init` frame.
 * - Client: binary audio; Lightning `{"type":"end"}` or `{"type":"finalize"}` = end of audio (flush,
 *   last message `is_last: true`, then the server closes 1000). Pulse `{"type":"finalize"}` = force a
 *   final and keep the session; `{"type":"close_stream"}` (or `end`) = flush, final `is_last`, close.
 *   `{"type":"keepalive"}` is accepted silently on both.
 * - Server: `{session_id, transcript, is_final, is_last, language?, full_transcript, word_timestamps?, from_finalize?}`
 *   (issue 9 §3, seed 002 "Handling Responses": `full_transcript` in every transcript frame — the
 *   browser examples read it — and the word array named `word_timestamps`, on finals when
 *   `word_timestamps=true`); Pulse adds `speech_started`/`speech_ended` `{type, session_id, timestamp}`
 *   with `vad_events=true` (alias `vad`). `language` appears on finals only.
 * - Errors: `{"status":"error","error":{"message","code"}}` (§4.1). Errors that end the session
 *   (bad config, undecodable audio, timeouts) are followed by a close (1008, or 1011 for engine failures).
 */
import { z } from 'zod';
import { VoxgateError } from '../../util/errors.js';
import { formatText, formatUtterance, type FormatOptions } from '../../text/format.js';
import type { ClientCommand, SessionEvent, SttDialect, SttInitRequest } from '../events.js';

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Which generation of the protocol a route speaks. */
export type SmallestVariant = 'lightning' | 'pulse';

/** `encoding` values of §4.1 (`ogg_opus` is also accepted as `ogg-opus`). */
export const SMALLEST_ENCODINGS = ['linear16', 'linear32', 'alaw', 'mulaw', 'opus', 'ogg_opus'] as const;
/** `sample_rate` values of §4.1 (Hz). */
export const SMALLEST_SAMPLE_RATES = [8000, 16000, 22050, 24000, 44100, 48000] as const;

/** Parsed query options (§4.1 table). */
export interface SmallestOptions {
  language: string;
  encoding: string;
  /** Hz. */
  sampleRate: number;
  wordTimestamps: boolean;
  /** Accepted for compatibility; `full_transcript` is sent in every transcript frame regardless. */
  fullTranscript: boolean;
  /** Punctuation and casing (`format`, default true). */
  format: boolean;
  /** `numerals=true` converts number words; `auto` and `false` leave them. */
  numerals: boolean;
  /** End-of-utterance silence, ms (100–10000, default 800). */
  eouTimeoutMs: number;
  /** Pulse `speech_started`/`speech_ended`. */
  vadEvents: boolean;
  /** `diarize=true` (§4.1): words carry `speaker` and `speaker_confidence` (issue 13). */
  diarize: boolean;
}

function bool(q: URLSearchParams, name: string, dflt: boolean): boolean {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  if (/^true$/i.test(v)) return true;
  if (/^false$/i.test(v)) return false;
  throw new VoxgateError('config_error', `invalid value for ${name}: "${v}" (expected true or false)`);
}

/** A boolean that changes nothing here: an unparseable value means the default (never a 400). */
function lenientBool(q: URLSearchParams, name: string, dflt: boolean): boolean {
  try {
    return bool(q, name, dflt);
  } catch {
    return dflt;
  }
}

/**
 * Parse and validate the query string (§4.1). Unknown parameters are ignored; `keywords`,
 * `redact_pii`, `redact_pci`, `sentence_timestamps` are accepted as no-ops for the embedded engine.
 * `diarize` is honoured (issue 13; strict true/false). smallest.ai documents no speaker-count hint.
 * @throws VoxgateError `config_error` naming the parameter and the accepted values.
 */
export function parseSmallestQuery(q: URLSearchParams): SmallestOptions {
  const encRaw = q.get('encoding') || 'linear16';
  const encoding = encRaw.toLowerCase().replace('-', '_');
  if (!(SMALLEST_ENCODINGS as readonly string[]).includes(encoding)) {
    throw new VoxgateError('config_error', `invalid value for encoding: "${encRaw}" (expected one of ${SMALLEST_ENCODINGS.join(', ')})`);
  }
  const srRaw = q.get('sample_rate') || '16000';
  const sampleRate = Number(srRaw);
  if (!/^\d+$/.test(srRaw) || !(SMALLEST_SAMPLE_RATES as readonly number[]).includes(sampleRate)) {
    throw new VoxgateError('config_error', `invalid value for sample_rate: "${srRaw}" (expected one of ${SMALLEST_SAMPLE_RATES.join(', ')})`);
  }
  const eouRaw = q.get('eou_timeout_ms');
  let eouTimeoutMs = 800;
  if (eouRaw !== null && eouRaw !== '') {
    eouTimeoutMs = Number(eouRaw);
    if (!/^\d+$/.test(eouRaw) || eouTimeoutMs < 100 || eouTimeoutMs > 10000) {
      throw new VoxgateError('config_error', `invalid value for eou_timeout_ms: "${eouRaw}" (expected an integer 100–10000)`);
    }
  }
  const numRaw = (q.get('numerals') || 'auto').toLowerCase();
  if (!['true', 'false', 'auto'].includes(numRaw)) {
    throw new VoxgateError('config_error', `invalid value for numerals: "${q.get('numerals')}" (expected true, false or auto)`);
  }
  return {
    language: q.get('language') || 'en',
    encoding,
    sampleRate,
    wordTimestamps: bool(q, 'word_timestamps', true),
    // Documented no-op now that every frame carries `full_transcript`: read leniently.
    fullTranscript: lenientBool(q, 'full_transcript', false),
    format: bool(q, 'format', true),
    numerals: numRaw === 'true',
    eouTimeoutMs,
    vadEvents: bool(q, 'vad_events', false) || bool(q, 'vad', false),
    diarize: bool(q, 'diarize', false),
  };
}

/**
 * The dialect-neutral init request for these options. `linear32` and `ogg_opus` map to the session's
 * encoding names; `language=multi` is passed through and refused by the session when the engine has
 * no language identification (a `config_error` listing the supported languages).
 */
export function smallestInit(o: SmallestOptions): SttInitRequest {
  return {
    language: o.language,
    encoding: o.encoding === 'ogg_opus' ? 'ogg-opus' : o.encoding,
    sampleRate: o.sampleRate,
    channels: 1,
    partials: true,
    vad: true,
    wordTimestamps: o.wordTimestamps,
    endpointingMs: o.eouTimeoutMs,
    vadEvents: o.vadEvents,
    ...(o.diarize ? { diarize: {} } : {}),
  };
}

/** `speaker`/`speaker_confidence` of a labelled word (§4.1 names); nothing for an unlabelled one. */
function speakerOf(w: { speaker?: number; speaker_confidence?: number; speakerConfidence?: number }): Pick<SmallestWord, 'speaker' | 'speaker_confidence'> {
  if (w.speaker === undefined) return {};
  const c = w.speaker_confidence ?? w.speakerConfidence;
  return c === undefined ? { speaker: w.speaker } : { speaker: w.speaker, speaker_confidence: round(c) };
}

const clientSchema = z.object({ type: z.string() }).loose();

/** Parse one client text frame for `variant` (module docs). Never throws. */
export function parseSmallestText(text: string, variant: SmallestVariant): ClientCommand {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: 'invalid_request', message: 'text frame is not JSON' };
  }
  const parsed = clientSchema.safeParse(json);
  if (!parsed.success) return { kind: 'invalid', code: 'invalid_request', message: 'text frames must be JSON objects with a "type" field' };
  switch (parsed.data.type) {
    case 'end':
    case 'close_stream':
      return { kind: 'close' };
    case 'finalize':
      return variant === 'pulse' ? { kind: 'finalize' } : { kind: 'close' };
    case 'keepalive':
      return { kind: 'keepalive' };
    default: {
      const known = variant === 'pulse' ? 'finalize, close_stream, end' : 'end, finalize';
      return { kind: 'invalid', code: 'invalid_request', message: `unknown message type "${parsed.data.type.slice(0, 40)}"; expected ${known}` };
    }
  }
}

/** A word of `word_timestamps` (seconds from stream start). */
export interface SmallestWord {
  word: string;
  start: number;
  end: number;
  confidence: number;
  /** Speaker label (integer ≥ 0) with `diarize=true` (§4.1 "+ `speaker`, `speaker_confidence` when diarize"). */
  speaker?: number;
  /** Confidence in [0, 1] of `speaker`, when known. */
  speaker_confidence?: number;
}

/**
 * A transcript frame (§4.1 server message; issue 9 §3, seed 002 "Handling Responses"): `full_transcript`
 * is in every transcript frame, and the word array is `word_timestamps` (finals only, when the query's
 * `word_timestamps` is true), repeated as `words` for clients written to §4.1.
 */
export interface SmallestTranscript {
  session_id: string;
  transcript: string;
  is_final: boolean;
  is_last: boolean;
  language?: string;
  /** Everything transcribed so far in the session, up to and including this frame's `transcript`. */
  full_transcript: string;
  word_timestamps?: SmallestWord[];
  /**
   * The same array as `word_timestamps`, under the name protocols.md §4.1 and smallest.ai's own
   * response-format page give it; both are sent so clients written to either read their words.
   */
  words?: SmallestWord[];
  from_finalize?: boolean;
}

/** Any server frame. */
export type SmallestServerMessage =
  | SmallestTranscript
  | { type: 'speech_started' | 'speech_ended'; session_id: string; timestamp: number }
  | { status: 'error'; error: { message: string; code: string } };

/**
 * Create the dialect for one session. Stateful: it keeps the running `full_transcript` and, on Pulse
 * with `vad_events`, whether a `speech_started` still awaits its `speech_ended`.
 *
 * Pulse VAD events (§4.2): every `speech_started` is answered by exactly one `speech_ended` — at the
 * final that closes the utterance, whether endpointing (`speech_final`) or a client `finalize` closed
 * it, or at the end of the session. Its `timestamp` is when speech ended, not when the end-of-utterance
 * wait expired: the last word's end, or without words the final's end minus the `eou_timeout_ms` wait
 * (endpointed) / the final's end (finalize, end of stream; the audio's end when no final covered the
 * speech); never before the `speech_started`.
 * @param variant `lightning` or `pulse` (control messages and VAD events differ, see module docs).
 */
export function createSmallestDialect(opts: SmallestOptions, variant: SmallestVariant): SttDialect {
  const fmt: FormatOptions = { punctuate: opts.format, smartFormat: false, numerals: opts.numerals };
  const formatting = fmt.punctuate || fmt.numerals;
  const vadEvents = opts.vadEvents && variant === 'pulse';
  const finals: string[] = [];
  /** Timestamp (s) of the `speech_started` not yet answered by a `speech_ended`; null when none is open. */
  let openSpeech: number | null = null;
  /** Speech end (s) of the latest final that did not close the utterance (stream end drains with such a final). */
  let lastSpeechEnd: number | null = null;
  const full = (current: string): string => [...finals, current].filter(Boolean).join(' ');
  const speechEnded = (sessionId: string, at: number): SmallestServerMessage[] => {
    if (openSpeech === null) return [];
    const timestamp = round(Math.max(openSpeech, at));
    openSpeech = null;
    return [{ type: 'speech_ended', session_id: sessionId, timestamp }];
  };
  /** When speech ended in the utterance of final `r` (seconds; see the function docs). */
  const speechEnd = (r: Extract<SessionEvent, { kind: 'final' }>['result']): number => {
    const last = r.words?.at(-1);
    if (last) return last.end;
    const end = r.start + r.duration;
    return r.speechFinal ? Math.max(r.start, end - opts.eouTimeoutMs / 1000) : end;
  };
  const encode = (ev: SessionEvent): SmallestServerMessage[] => {
    switch (ev.kind) {
      case 'ready':
        return [];
      case 'partial': {
        if (!ev.result.transcript) return [];
        const transcript = formatting ? formatText(ev.result.transcript, fmt) : ev.result.transcript;
        return [{ session_id: ev.info.sessionId, transcript, is_final: false, is_last: false, full_transcript: full(transcript) }];
      }
      case 'final': {
        const r = ev.result;
        const closesUtterance = r.speechFinal || r.fromFinalize;
        const ended = vadEvents && closesUtterance ? speechEnded(ev.info.sessionId, speechEnd(r)) : [];
        lastSpeechEnd = closesUtterance ? null : speechEnd(r);
        if (!r.transcript && !r.fromFinalize) return ended;
        let transcript = r.transcript;
        let words: SmallestWord[] | undefined = r.words?.map((w) => ({ word: w.word, start: round(w.start), end: round(w.end), confidence: round(w.confidence), ...speakerOf(w) }));
        if (formatting) {
          if (words && words.length > 0) {
            const f = formatUtterance(words, fmt);
            transcript = f.transcript;
            words = f.words.map((w) => ({ word: w.punctuated_word, start: w.start, end: w.end, confidence: w.confidence, ...speakerOf(w) }));
          } else {
            transcript = formatText(r.transcript, fmt);
          }
        }
        if (transcript) finals.push(transcript);
        const m: SmallestTranscript = { session_id: ev.info.sessionId, transcript, is_final: true, is_last: false, language: r.language, full_transcript: full('') };
        if (opts.wordTimestamps) m.word_timestamps = m.words = words ?? [];
        if (variant === 'pulse') m.from_finalize = r.fromFinalize;
        return [m, ...ended];
      }
      case 'speech_started': {
        if (!vadEvents) return [];
        // A new utterance while one is open (cannot happen with the segmented engines): close it first.
        const out = speechEnded(ev.info.sessionId, ev.timestamp);
        openSpeech = ev.timestamp;
        return [...out, { type: 'speech_started', session_id: ev.info.sessionId, timestamp: round(ev.timestamp) }];
      }
      case 'utterance_end':
        return [];
      case 'error':
        return [{ status: 'error', error: { message: ev.message, code: ev.code } }];
      case 'ended': {
        const ended = speechEnded(ev.info.sessionId, lastSpeechEnd ?? ev.audioSeconds);
        const m: SmallestTranscript = { session_id: ev.info.sessionId, transcript: '', is_final: true, is_last: true, language: opts.language, full_transcript: full('') };
        if (opts.wordTimestamps) m.word_timestamps = m.words = [];
        if (variant === 'pulse') m.from_finalize = false;
        return [...ended, m];
      }
    }
  };
  return {
    name: variant === 'pulse' ? 'smallest-pulse' : 'smallest-lightning',
    // Pulse VAD events need the last word's end for `speech_ended` (the words are sent only when asked).
    alwaysWords: vadEvents,
    parseText: (text) => parseSmallestText(text, variant),
    encode: (ev) => encode(ev).map((m) => JSON.stringify(m)),
  };
}
