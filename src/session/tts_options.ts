/**
 * Validation of TTS request options against a catalogue entry and its engine's capabilities,
 * shared by every entry point: the unified `init` (protocols.md §1.5), Deepgram `/v1/speak` query
 * parameters (§3), the HTTP bodies (§1.7) and the CLI. Every failure is a `config_error` naming the
 * offending field and the accepted values (issue #4 "Bad input").
 *
 * Voice names: a voice id of the model (`kal16`, `en-us`, case-insensitive), or a Deepgram Aura name
 * (`aura-asteria-en`, `aura-2-thalia-en`, `aura-2-celeste-es`, …), which maps to this model's voice
 * for the name's language — the model's default voice when it speaks that language — so unchanged
 * Deepgram clients work.
 */
import { defaultSampleRate, supportedSampleRates, TTS_ENCODINGS, type TtsEncoding } from '../audio/encode.js';
import type { TtsModelEntry } from '../config/tts_config.js';
import type { TtsEngine, TtsVoice } from '../engines/tts/types.js';
import { VoxgateError } from '../util/errors.js';

/** Options as a client sent them (all optional; numbers already parsed). */
export interface TtsRequestOptions {
  /** Voice id or Deepgram Aura name. */
  voice?: string;
  /** BCP-47 / ISO-639-1 language; picks a voice when `voice` is absent, must match it otherwise. */
  language?: string;
  /** Output encoding name. */
  encoding?: string;
  /** Output rate, Hz. */
  sampleRate?: number;
  /** Speaking-rate multiplier. */
  speed?: number;
}

/** Validated options with defaults applied. */
export interface ResolvedTtsOptions {
  model: TtsModelEntry;
  engine: TtsEngine;
  voice: TtsVoice;
  /** The name the client used for the voice (may be an Aura alias), else the voice id. */
  voiceName: string;
  encoding: TtsEncoding;
  /** Output rate, Hz. */
  sampleRate: number;
  /** Multiplier, 1 when the engine cannot change speed. */
  speed: number;
}

/** Deepgram Aura voice names: `aura-<name>-<lang>` and `aura-2-<name>-<lang>` (protocols.md §3 `model`). */
export const AURA_NAME_RE = /^aura-(?:2-)?[a-z]+-([a-z]{2})$/;

/** The voices a catalogue entry exposes, in order (its `voices` filter applied). */
export function modelVoices(model: TtsModelEntry, engine: TtsEngine): TtsVoice[] {
  const all = engine.capabilities.voices;
  if (!model.voices) return all;
  const wanted = model.voices.map((v) => v.toLowerCase());
  return wanted.map((id) => all.find((v) => v.id === id)).filter((v): v is TtsVoice => v !== undefined);
}

/** The entry's default voice: `defaultVoice`, else its first voice. */
export function defaultVoice(model: TtsModelEntry, engine: TtsEngine): TtsVoice {
  const voices = modelVoices(model, engine);
  const want = model.defaultVoice?.toLowerCase();
  return voices.find((v) => v.id === want) ?? voices[0]!;
}

/** Does `voice` speak `language` (exact tag, or equal primary subtags)? */
export function speaks(voice: TtsVoice, language: string): boolean {
  const lang = language.toLowerCase().replace(/_/g, '-');
  const primary = lang.split('-')[0]!;
  return voice.languages.some((l) => l === lang || l.split('-')[0] === primary);
}

/**
 * The best voice of the entry for `language`: the default voice when it speaks it, else a voice
 * whose tag matches exactly, else the first whose primary subtag matches; `null` when none.
 */
export function voiceForLanguage(model: TtsModelEntry, engine: TtsEngine, language: string): TtsVoice | null {
  const def = defaultVoice(model, engine);
  if (speaks(def, language)) return def;
  const voices = modelVoices(model, engine);
  const lang = language.toLowerCase().replace(/_/g, '-');
  return voices.find((v) => v.id === lang || v.languages[0] === lang) ?? voices.find((v) => speaks(v, lang)) ?? null;
}

/**
 * Look a voice name up in one entry: a voice id (case-insensitive) or an Aura alias.
 * @returns the voice, or `null` when the name is not a voice of this entry.
 */
export function lookupVoice(model: TtsModelEntry, engine: TtsEngine, name: string): TtsVoice | null {
  const id = name.trim().toLowerCase();
  const exact = modelVoices(model, engine).find((v) => v.id === id);
  if (exact) return exact;
  const aura = AURA_NAME_RE.exec(id);
  return aura ? voiceForLanguage(model, engine, aura[1]!) : null;
}

function listVoices(model: TtsModelEntry, engine: TtsEngine): string {
  return modelVoices(model, engine)
    .map((v) => v.id)
    .join(', ');
}

/**
 * Validate and complete a request for one catalogue entry.
 * @param allowedEncodings encodings this entry point can deliver (Deepgram's WebSocket: PCM only).
 * @throws VoxgateError `config_error` for an unknown voice (listing the entry's voices), a language
 *   no voice speaks or the voice does not speak, an unsupported encoding or sample rate (listing the
 *   supported ones), or a speed outside the engine's range.
 */
export function resolveTtsOptions(req: TtsRequestOptions, model: TtsModelEntry, engine: TtsEngine, allowedEncodings: readonly TtsEncoding[] = TTS_ENCODINGS): ResolvedTtsOptions {
  let voice: TtsVoice;
  const language = req.language?.trim() || undefined;
  if (req.voice !== undefined && req.voice.trim() !== '') {
    const found = lookupVoice(model, engine, req.voice);
    if (!found) {
      const aura = AURA_NAME_RE.exec(req.voice.trim().toLowerCase());
      throw new VoxgateError(
        'config_error',
        aura
          ? `voice "${req.voice}" asks for language "${aura[1]}", which model ${model.code} does not speak; available voices: ${listVoices(model, engine)}`
          : `unknown voice "${req.voice}" for model ${model.code}; available voices: ${listVoices(model, engine)}`,
      );
    }
    voice = found;
    if (language && !speaks(voice, language)) {
      throw new VoxgateError('config_error', `voice "${voice.id}" does not speak language "${language}" (it speaks ${voice.languages.join(', ')})`);
    }
  } else if (language) {
    const found = voiceForLanguage(model, engine, language);
    if (!found) {
      const langs = [...new Set(modelVoices(model, engine).map((v) => v.languages[v.languages.length - 1]!))].sort();
      throw new VoxgateError('config_error', `unsupported language "${language}" for model ${model.code}; supported: ${langs.join(', ')}`);
    }
    voice = found;
  } else {
    voice = defaultVoice(model, engine);
  }

  const encName = (req.encoding ?? 'linear16').trim().toLowerCase();
  const encoding = (encName === 'pcm' || encName === 'pcm_s16le' ? 'linear16' : encName === 'ulaw' ? 'mulaw' : encName) as TtsEncoding;
  if (!allowedEncodings.includes(encoding)) {
    throw new VoxgateError('config_error', `unsupported encoding "${req.encoding}"; supported: ${allowedEncodings.join(', ')}`);
  }
  const sampleRate = req.sampleRate ?? defaultSampleRate(encoding);
  const rates = supportedSampleRates(encoding);
  if (!Number.isInteger(sampleRate) || !rates.includes(sampleRate)) {
    throw new VoxgateError('config_error', `unsupported sample_rate ${sampleRate} for encoding ${encoding}; supported: ${rates.join(', ')}`);
  }
  const range = engine.capabilities.speed;
  const speed = req.speed ?? 1;
  if (typeof speed !== 'number' || !Number.isFinite(speed)) throw new VoxgateError('config_error', `speed must be a number`);
  if (range === null) {
    if (speed !== 1) throw new VoxgateError('config_error', `model ${model.code} cannot change speed; omit "speed" or send 1`);
  } else if (speed < range.min || speed > range.max) {
    throw new VoxgateError('config_error', `speed ${speed} is out of range; supported: ${range.min}–${range.max}`);
  }
  return { model, engine, voice, voiceName: req.voice?.trim() || voice.id, encoding, sampleRate, speed };
}
