/**
 * Deepgram `/v1/listen` query parameters (shared/spec/protocols.md §2.2), parsed and validated once at the
 * upgrade (live) or request (pre-recorded), so that an invalid value becomes an HTTP 400 with a JSON
 * body before any session exists (issue #3 "Bad input").
 *
 * Rules:
 * - All values arrive as strings. Booleans accept `true`/`false` (any case); anything else is a
 *   `config_error` naming the parameter — for honoured parameters. Documented no-ops are read
 *   leniently (an unparseable value means the default), so clients that send e.g. `diarize=undefined` work.
 * - Repeatable parameters (`keyterm`, `keywords`, `tag`, `redact`, `search`, `replace`, `extra`) keep
 *   every occurrence in order.
 * - Unknown parameters are ignored (Deepgram ignores them too), so clients that send newer options work.
 * - Whether a parameter is honoured or a documented no-op is decided by the serving engine's
 *   capabilities, not here; see {@link LISTEN_PARAMETER_SUPPORT}.
 */
import { VoxgateError } from '../../util/errors.js';
import { checkDiarizeOptions, speakerHint } from '../../diarize/hints.js';
import type { DiarizeOptions } from '../../diarize/types.js';

/** Encodings named by Deepgram's `encoding` enum (§2.2), plus the containers voxgate also decodes. */
export const DEEPGRAM_ENCODINGS = [
  'linear16',
  'linear32',
  'flac',
  'alaw',
  'mulaw',
  'amr-nb',
  'amr-wb',
  'opus',
  'ogg-opus',
  'speex',
  'g729',
  // voxgate extensions (container formats also accepted when `encoding` is omitted)
  'mp3',
  'webm',
] as const;

/** Parsed `/v1/listen` options. Times are in the units Deepgram uses: ms for endpointing and utterance end. */
export interface ListenOptions {
  /** Deepgram model name or a voxgate catalogue code (`model=nova-3`, `model=local/pocketsphinx:en`). */
  model?: string;
  /** BCP-47 tag as sent (`en`, `en-US`). */
  language?: string;
  /** Lower-cased encoding; absent for containerised audio (sniffed). */
  encoding?: string;
  /** Hz; Deepgram only reads it when `encoding` is set. */
  sampleRate?: number;
  /** Interleaved channels in the audio (default 1). */
  channels: number;
  /** Transcribe each channel independently (`channel_index: [i, channels]`). */
  multichannel: boolean;
  /** Emit interim `Results` (`is_final: false`). */
  interimResults: boolean;
  /** Trailing silence (ms) that ends an utterance; `null` when `endpointing=false`; undefined = server default. */
  endpointing?: number | null;
  /** Gap in words (ms) after which `UtteranceEnd` is sent; `null` when off. Requires `interim_results`. */
  utteranceEndMs: number | null;
  /** Emit `SpeechStarted`. */
  vadEvents: boolean;
  punctuate: boolean;
  smartFormat: boolean;
  numerals: boolean;
  /**
   * Diarize (issue 13): `diarize=true`, or a `diarize_model` (`latest`, `v1`, `v2`: "specifying this
   * parameter enables diarization", Deepgram SDK `ListenV1RequestUrl.diarize_model`). `diarize_version`
   * (the legacy version selector) is accepted and changes nothing by itself.
   */
  diarize: boolean;
  /** The speaker-count hints (`num_speakers` alias `diarize_speakers`, `min_speakers`, `max_speakers`; src/diarize/hints.ts); present when {@link diarize}. */
  diarizeOptions?: DiarizeOptions;
  fillerWords: boolean;
  profanityFilter: boolean;
  /** `redact` values (`pci`, `numbers`, `ssn`, `true`…); empty when off. */
  redact: string[];
  keyterms: string[];
  keywords: string[];
  tags: string[];
  /** Pre-recorded: return `results.utterances`. */
  utterances: boolean;
  /** Pre-recorded: return paragraphs. */
  paragraphs: boolean;
  /** Pre-recorded: silence (s) that splits utterances (default 0.8). */
  uttSplit: number;
  mipOptOut: boolean;
}

/**
 * How each recognised parameter is treated by the embedded PocketSphinx engine. Served in
 * `GET /v1/models` and documented in docs/stt.md: `honoured` parameters change output; `no-op`
 * parameters are accepted (so clients work unchanged) but do not change output for this engine.
 */
export const LISTEN_PARAMETER_SUPPORT: Record<string, 'honoured' | 'no-op'> = {
  model: 'honoured',
  language: 'honoured',
  encoding: 'honoured',
  sample_rate: 'honoured',
  channels: 'honoured',
  multichannel: 'honoured',
  interim_results: 'honoured',
  endpointing: 'honoured',
  utterance_end_ms: 'honoured',
  vad_events: 'honoured',
  punctuate: 'honoured',
  smart_format: 'honoured',
  numerals: 'honoured',
  utterances: 'honoured',
  paragraphs: 'honoured',
  utt_split: 'honoured',
  tag: 'honoured',
  diarize: 'honoured',
  diarize_model: 'honoured',
  diarize_version: 'honoured',
  num_speakers: 'honoured',
  diarize_speakers: 'honoured',
  min_speakers: 'honoured',
  max_speakers: 'honoured',
  filler_words: 'no-op',
  profanity_filter: 'no-op',
  redact: 'no-op',
  keyterm: 'no-op',
  keywords: 'no-op',
  search: 'no-op',
  replace: 'no-op',
  detect_entities: 'no-op',
  dictation: 'no-op',
  extra: 'no-op',
  mip_opt_out: 'no-op',
  callback: 'no-op',
  callback_method: 'no-op',
  version: 'no-op',
};

/**
 * A boolean parameter. Honoured parameters are strict: anything but `true`/`false` is a
 * `config_error`. Documented no-ops ({@link LISTEN_PARAMETER_SUPPORT}) are read leniently: an
 * unparseable value (Mastra's Deepgram voice sends `diarize=undefined`) means the default, since it
 * could not change the output anyway (issue 9 §3).
 * @throws VoxgateError `config_error` for a malformed honoured parameter.
 */
function bool(q: URLSearchParams, name: string, dflt = false): boolean {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  const s = v.toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (LISTEN_PARAMETER_SUPPORT[name] === 'no-op') return dflt;
  throw new VoxgateError('config_error', `invalid value for ${name}: "${v}" (expected true or false)`);
}

/**
 * `diarize`: strict like any honoured boolean, except that the stringified empty values a client
 * library sends for an unset option (`undefined`, `null` — Mastra's Deepgram voice sends
 * `diarize=undefined`) mean the default, off (issue 9 §3 compatibility kept).
 * @throws VoxgateError `config_error` for any other value than true/false.
 */
function diarizeFlag(q: URLSearchParams): boolean {
  const v = q.get('diarize');
  if (v !== null && /^(undefined|null)$/i.test(v)) return false;
  return bool(q, 'diarize');
}

/** `diarize_model` values (Deepgram SDK: batch `latest`, `v1`, `v2`; streaming `latest`, `v1`). */
const DIARIZE_MODEL_RE = /^(latest|v\d+)$/i;

/**
 * Whether the query asks for diarization, and its speaker-count hints (always validated, so a bad
 * hint is refused even when diarization is off).
 * @throws VoxgateError `config_error` naming the parameter.
 */
function parseDiarize(q: URLSearchParams): { diarize: boolean; diarizeOptions?: DiarizeOptions } {
  let diarize = diarizeFlag(q);
  const model = q.get('diarize_model');
  if (model !== null && model !== '') {
    if (!DIARIZE_MODEL_RE.test(model)) throw new VoxgateError('config_error', `invalid value for diarize_model: "${model.slice(0, 40)}" (expected latest, v1 or v2)`);
    diarize = true;
  }
  const num = speakerHint('num_speakers', q.get('num_speakers'));
  const alias = speakerHint('diarize_speakers', q.get('diarize_speakers'));
  if (num !== undefined && alias !== undefined && num !== alias) {
    throw new VoxgateError('config_error', `num_speakers (${num}) and diarize_speakers (${alias}) disagree; send one of them`);
  }
  const hints = checkDiarizeOptions({
    numSpeakers: num ?? alias,
    minSpeakers: speakerHint('min_speakers', q.get('min_speakers')),
    maxSpeakers: speakerHint('max_speakers', q.get('max_speakers')),
  });
  return diarize ? { diarize, diarizeOptions: hints } : { diarize };
}

function int(q: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new VoxgateError('config_error', `invalid value for ${name}: "${v}" (expected an integer)`);
  const n = Number(v);
  if (n < min || n > max) throw new VoxgateError('config_error', `invalid value for ${name}: ${n} (expected ${min}–${max})`);
  return n;
}

/**
 * Parse `/v1/listen` query parameters (protocols.md §2.2).
 * @param q the request's query string.
 * @returns validated options with Deepgram's defaults applied (channels 1, everything else off).
 * @throws VoxgateError `config_error` naming the parameter for a malformed or out-of-range value, e.g.
 *   `sample_rate=7`, `encoding=foo`, `interim_results=yes`, `endpointing=-5`.
 */
export function parseListenQuery(q: URLSearchParams): ListenOptions {
  const encodingRaw = q.get('encoding');
  let encoding: string | undefined;
  if (encodingRaw !== null && encodingRaw !== '') {
    encoding = encodingRaw.toLowerCase().replace('_', '-');
    if (!(DEEPGRAM_ENCODINGS as readonly string[]).includes(encoding)) {
      throw new VoxgateError('config_error', `invalid value for encoding: "${encodingRaw}" (expected one of ${DEEPGRAM_ENCODINGS.join(', ')})`);
    }
  }
  // Deepgram accepts any integer rate; below 8000 or above 192000 is certainly a client bug.
  const sampleRate = int(q, 'sample_rate', 8000, 192000);
  const channels = int(q, 'channels', 1, 8) ?? 1;

  let endpointing: number | null | undefined;
  const ep = q.get('endpointing');
  if (ep !== null && ep !== '') {
    const s = ep.toLowerCase();
    if (s === 'false') endpointing = null;
    else if (s === 'true') endpointing = undefined;
    else endpointing = int(q, 'endpointing', 0, 60000)!;
  }
  const utteranceEndMs = int(q, 'utterance_end_ms', 0, 60000) ?? null;

  const uttSplitRaw = q.get('utt_split');
  let uttSplit = 0.8;
  if (uttSplitRaw !== null && uttSplitRaw !== '') {
    const n = Number(uttSplitRaw);
    if (!Number.isFinite(n) || n <= 0 || n > 60) throw new VoxgateError('config_error', `invalid value for utt_split: "${uttSplitRaw}" (expected seconds, 0–60)`);
    uttSplit = n;
  }

  const redact = q.getAll('redact').filter((v) => v !== '' && v.toLowerCase() !== 'false');
  const smartFormat = bool(q, 'smart_format');
  const diar = parseDiarize(q);
  return {
    model: q.get('model') || undefined,
    language: q.get('language') || undefined,
    encoding,
    sampleRate,
    channels,
    multichannel: bool(q, 'multichannel'),
    interimResults: bool(q, 'interim_results'),
    endpointing,
    utteranceEndMs,
    vadEvents: bool(q, 'vad_events'),
    punctuate: bool(q, 'punctuate'),
    smartFormat,
    numerals: bool(q, 'numerals'),
    ...diar,
    fillerWords: bool(q, 'filler_words'),
    profanityFilter: bool(q, 'profanity_filter'),
    redact,
    keyterms: q.getAll('keyterm').filter(Boolean),
    keywords: q.getAll('keywords').filter(Boolean),
    tags: q.getAll('tag').filter(Boolean),
    utterances: bool(q, 'utterances'),
    paragraphs: bool(q, 'paragraphs'),
    uttSplit,
    mipOptOut: bool(q, 'mip_opt_out'),
  };
}
