/**
 * The one place that builds Deepgram-shaped transcripts (issue 10 Part 1 "One Deepgram module"):
 * the `Results` frame, its alternatives and word entries, rounding, `metadata`/`Metadata` with
 * `model_info`/`model_uuid` ids, and the `SpeechStarted`/`UtteranceEnd` frames — shared by
 *
 * - Deepgram live `/v1/listen` (src/protocol/deepgram/listen.ts; shared/spec/protocols.md §2.4),
 * - the SLNG direct-route dialect with Deepgram-native responses (src/protocol/deepgram-style/; §1.4),
 * - Deepgram's pre-recorded response, `POST /v1/listen` and SLNG `POST /v1/stt/{model}`
 *   (src/transcribe/responses.ts; §1.7).
 *
 * The frame types follow the Deepgram JS SDK's `ListenV1Results`, `ListenV1Metadata`,
 * `ListenV1SpeechStarted` and `ListenV1UtteranceEnd` (src/api/resources/listen/resources/v1/types/),
 * narrowed to what voxgate sends; the zod schemas in ./schema.ts check the same shapes on the wire.
 *
 * Units: every time is seconds from the start of the stream (or file), rounded to milliseconds;
 * every confidence is in [0, 1], rounded to 3 decimals ({@link roundDg}). Everything here is pure.
 */
import { createHash } from 'node:crypto';
import type { SttFinal, SttWord } from '../../engines/stt/types.js';
import { formatText, formatUtterance, type FormatOptions, type FormattedWord } from '../../text/format.js';
import type { SessionEvent, SessionInfo } from '../events.js';
import { interimWords } from '../interim.js';
import type { ListenServerMessage } from './schema.js';
import type { DeepgramStyleServerMessage } from '../deepgram-style/schema.js';

/** One word of an alternative (SDK `ListenV1Results…Words.Item`; §2.4). Times s, confidence [0, 1]. */
export interface DeepgramWord {
  word: string;
  start: number;
  end: number;
  confidence: number;
  /** The word with formatting applied; present only when `punctuate`, `smart_format` or `numerals` is on (§2.4). */
  punctuated_word?: string;
  /** Speaker label (integer ≥ 0) when diarizing (§2.4 `speaker`; issue 13). On every word of a diarized result. */
  speaker?: number;
  /**
   * Confidence in [0, 1] of `speaker`. Pre-recorded responses only: the Deepgram SDK documents it as
   * "returned only for pre-recorded diarization; not available for streaming" (ListenV1Response… Words.Item).
   */
  speaker_confidence?: number;
}

/** One alternative of a channel (SDK `…Alternatives.Item`; §2.4 required transcript, confidence, words). */
export interface DeepgramAlternative {
  transcript: string;
  confidence: number;
  words: DeepgramWord[];
}

/** `model_info` of one model (SDK `ListenV1Results.Metadata.ModelInfo`). */
export interface DeepgramModelInfo {
  name: string;
  version: string;
  arch: string;
}

/** `metadata` of a `Results` frame (SDK `ListenV1Results.Metadata`; §2.4). */
export interface DeepgramResultsMetadata {
  request_id: string;
  model_info: DeepgramModelInfo;
  model_uuid: string;
}

/** A `Results` frame (SDK `ListenV1Results`; §2.4, §1.4). */
export interface DeepgramResults {
  type: 'Results';
  /** `[channel, total channels]`, 0-based channel. */
  channel_index: [number, number];
  /** Seconds covered by this result. */
  duration: number;
  /** Seconds from stream start. */
  start: number;
  is_final: boolean;
  speech_final: boolean;
  from_finalize: boolean;
  channel: { alternatives: DeepgramAlternative[] };
  metadata: DeepgramResultsMetadata;
}

/** `SpeechStarted` (SDK `ListenV1SpeechStarted`; §2.4). `timestamp` in seconds. */
export interface DeepgramSpeechStarted {
  type: 'SpeechStarted';
  channel: [number, number];
  timestamp: number;
}

/** `UtteranceEnd` (SDK `ListenV1UtteranceEnd`; §2.4). `last_word_end` in seconds. */
export interface DeepgramUtteranceEnd {
  type: 'UtteranceEnd';
  channel: [number, number];
  last_word_end: number;
}

/** The request-level `metadata` of Deepgram: the closing live `Metadata` (§2.4) and the pre-recorded body (§1.7). */
export interface DeepgramRequestMetadata {
  transaction_key: 'deprecated';
  request_id: string;
  /** Hex SHA-256 of the audio bytes received. */
  sha256: string;
  /** ISO 8601. */
  created: string;
  /** Seconds of audio. */
  duration: number;
  channels: number;
  /** `[model_uuid]`. */
  models: string[];
  /** Keyed by `model_uuid`. */
  model_info: Record<string, DeepgramModelInfo>;
}

/** The closing `Metadata` frame of `/v1/listen` (SDK `ListenV1Metadata` plus `models`/`model_info`; §2.4). */
export type DeepgramListenMetadata = { type: 'Metadata' } & DeepgramRequestMetadata;

/** Any server frame of `/v1/listen` (SDK `V1Socket.Response`); v1 has no JSON error frame (§2.4–2.5). */
export type DeepgramListenFrame = DeepgramResults | DeepgramListenMetadata | DeepgramUtteranceEnd | DeepgramSpeechStarted;

/** `T` when it is assignable to `U`; a compile error otherwise. */
type Fits<T extends U, U> = T;
/**
 * Compile-time checks: every frame these types allow fits the wire schemas of `/v1/listen`
 * (./schema.ts) and of the Deepgram-style route (../deepgram-style/schema.ts), so a field's type
 * cannot drift apart silently (an extra field is caught at run time by the strict schemas in tests).
 * The check lives here, not in the schema files: those import only zod, for the browser client.
 */
export type FramesFitSchemas = [
  Fits<DeepgramListenFrame, ListenServerMessage>,
  Fits<DeepgramResults | DeepgramSpeechStarted | DeepgramUtteranceEnd, DeepgramStyleServerMessage>,
];

/**
 * Round to `digits` decimals (3: times to the millisecond, confidences to 3 places), as every
 * Deepgram shape here does.
 */
export function roundDg(x: number, digits = 3): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

/**
 * A name-based UUID (RFC 4122 version 5 layout over SHA-1 of `voxgate:<name>`), so a model's
 * `model_uuid` is stable across sessions and processes.
 * @param name the model code, e.g. `local/pocketsphinx:en`.
 */
export function nameUuid(name: string): string {
  const h = createHash('sha1').update('voxgate:' + name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** Which model served a request: its catalogue code and the engine behind it. */
export interface ServedModel {
  /** Catalogue code (Deepgram `model_info.name`). */
  code: string;
  engine: { id: string; version: string };
}

/** `model_info` of `m`: name = model code, version = engine version, arch = engine id. */
export function modelInfo(m: ServedModel): DeepgramModelInfo {
  return { name: m.code, version: m.engine.version, arch: m.engine.id };
}

/** `metadata` of a `Results` frame (§2.4). */
export function resultsMetadata(requestId: string, m: ServedModel): DeepgramResultsMetadata {
  return { request_id: requestId, model_info: modelInfo(m), model_uuid: nameUuid(m.code) };
}

/**
 * The request-level metadata (§2.4 closing `Metadata` without its `type`; §1.7 pre-recorded `metadata`).
 * @param o.duration seconds of audio (rounded here); `o.created` when the request arrived.
 */
export function requestMetadata(o: { requestId: string; sha256: string; created: Date; duration: number; channels: number; model: ServedModel }): DeepgramRequestMetadata {
  const uuid = nameUuid(o.model.code);
  return {
    transaction_key: 'deprecated',
    request_id: o.requestId,
    sha256: o.sha256,
    created: o.created.toISOString(),
    duration: roundDg(o.duration),
    channels: o.channels,
    models: [uuid],
    model_info: { [uuid]: modelInfo(o.model) },
  };
}

/** No formatting. */
export const NO_FORMAT: FormatOptions = { punctuate: false, smartFormat: false, numerals: false };

/** True when any of `punctuate`, `smart_format`, `numerals` is on. */
export function formatting(fmt: FormatOptions): boolean {
  return fmt.punctuate || fmt.smartFormat || fmt.numerals;
}

/** Options of {@link deepgramAlternative}. */
export interface AlternativeOptions {
  /** Include `speaker_confidence` on labelled words (pre-recorded responses only; see {@link DeepgramWord.speaker_confidence}). */
  speakerConfidence?: boolean;
}

/**
 * One alternative (§2.4) for interims, finals and pre-recorded utterances alike: the transcript
 * (formatted when `fmt` asks; from the words when there are any, else from `text`), the confidence
 * and the word entries, times and confidences rounded ({@link roundDg}). Words carry
 * `punctuated_word` only when formatting is on, as on Deepgram (§2.4) — or when the engine's words
 * carry their own `punctuatedWord` (an upstream that formats): then those and `text` are used as they are.
 * @param text the engine's transcript.
 * @param words the engine's words, seconds from stream start; word/start/end/confidence (and `punctuatedWord` when present) are used.
 * @param confidence utterance confidence in [0, 1].
 */
export function deepgramAlternative(text: string, words: readonly SttWord[], confidence: number, fmt: FormatOptions, opts: AlternativeOptions = {}): DeepgramAlternative {
  const spk = (w: SttWord): Pick<DeepgramWord, 'speaker' | 'speaker_confidence'> =>
    w.speaker === undefined ? {} : opts.speakerConfidence && w.speakerConfidence !== undefined ? { speaker: w.speaker, speaker_confidence: w.speakerConfidence } : { speaker: w.speaker };
  const raw = words.map((w) => ({ word: w.word, start: w.start, end: w.end, confidence: w.confidence, ...spk(w) }));
  const on = formatting(fmt);
  let transcript = text;
  let out: DeepgramWord[] = raw;
  if (words.some((w) => w.punctuatedWord !== undefined)) {
    // The engine formatted already (an upstream Deepgram's `punctuated_word`): relay its words and transcript as they are.
    out = words.map((w) => ({ word: w.word, start: w.start, end: w.end, confidence: w.confidence, punctuated_word: w.punctuatedWord ?? w.word, ...spk(w) }));
  } else if (on) {
    const f = raw.length > 0 ? formatUtterance(raw, fmt) : { words: [], transcript: formatText(text, fmt) };
    transcript = f.transcript;
    // formatUtterance carries every property of its input words through (src/text/format.ts).
    out = (f.words as (FormattedWord & Pick<DeepgramWord, 'speaker_confidence'>)[]).map((w) => ({
      word: w.word,
      start: w.start,
      end: w.end,
      confidence: w.confidence,
      punctuated_word: w.punctuated_word,
      ...(w.speaker !== undefined ? { speaker: w.speaker } : {}),
      ...(w.speaker_confidence !== undefined ? { speaker_confidence: w.speaker_confidence } : {}),
    }));
  }
  return {
    transcript,
    confidence: roundDg(confidence),
    words: out.map((w) => {
      const r: DeepgramWord = { ...w, start: roundDg(w.start), end: roundDg(w.end), confidence: roundDg(w.confidence) };
      if (w.speaker_confidence !== undefined) r.speaker_confidence = roundDg(w.speaker_confidence);
      return r;
    }),
  };
}

/** `[channel, total]` for an event (§2.4 `channel_index`; the `channel` of SpeechStarted/UtteranceEnd). */
function channelPair(info: SessionInfo, channel: number | undefined): [number, number] {
  return [channel ?? 0, info.transcriptChannels ?? 1];
}

/**
 * A `Results` frame for an interim (`is_final: false`; words from src/protocol/interim.ts) or a final.
 * @param fmt the session's formatting (§2.2 `punctuate`/`smart_format`/`numerals`).
 * @returns `null` for an interim without text (Deepgram sends none); finals are always sent, empty ones too.
 */
export function deepgramResults(ev: Extract<SessionEvent, { kind: 'partial' | 'final' }>, fmt: FormatOptions): DeepgramResults | null {
  let final: Pick<SttFinal, 'speechFinal' | 'fromFinalize'> = { speechFinal: false, fromFinalize: false };
  let alternative: DeepgramAlternative;
  if (ev.kind === 'partial') {
    if (!ev.result.transcript) return null;
    const interim = interimWords(ev.result);
    alternative = deepgramAlternative(ev.result.transcript, interim.words, interim.confidence, fmt);
  } else {
    final = ev.result;
    alternative = deepgramAlternative(ev.result.transcript, ev.result.words ?? [], ev.result.confidence, fmt);
  }
  return {
    type: 'Results',
    channel_index: channelPair(ev.info, ev.channel),
    duration: roundDg(ev.result.duration),
    start: roundDg(ev.result.start),
    is_final: ev.kind === 'final',
    speech_final: final.speechFinal,
    from_finalize: final.fromFinalize,
    channel: { alternatives: [alternative] },
    metadata: resultsMetadata(ev.info.requestId, { code: ev.info.model.code, engine: ev.info.engine }),
  };
}

/**
 * The frames of the session events both live Deepgram dialects render alike (§2.4): `Results` for
 * `partial`/`final`, `SpeechStarted` (only when the client asked for `vad_events`), `UtteranceEnd`.
 * @param fmt the session's formatting (§2.2).
 * @returns `undefined` for the events a dialect renders itself (`ready`, `error`, `ended`).
 */
export function deepgramLiveFrames(ev: SessionEvent, fmt: FormatOptions): (DeepgramResults | DeepgramSpeechStarted | DeepgramUtteranceEnd)[] | undefined {
  switch (ev.kind) {
    case 'partial':
    case 'final': {
      const r = deepgramResults(ev, fmt);
      return r ? [r] : [];
    }
    case 'speech_started':
      return ev.info.vadEvents ? [{ type: 'SpeechStarted', channel: channelPair(ev.info, ev.channel), timestamp: roundDg(ev.timestamp) }] : [];
    case 'utterance_end':
      return [{ type: 'UtteranceEnd', channel: channelPair(ev.info, ev.channel), last_word_end: roundDg(ev.lastWordEnd) }];
    default:
      return undefined;
  }
}
