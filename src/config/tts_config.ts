/**
 * The TTS half of the configuration: the TTS model catalogue and TTS limits (issue #4).
 * Merged into {@link import('./config.js').VoxgateConfig} as `tts`; a config file's `tts.models`
 * replaces the built-in catalogue, `tts.limits` overrides single defaults.
 *
 * A catalogue entry decides which engine serves `/v1/tts/<code>` and
 * `/v1/bridges/unmute/tts/<code>`, its default voice, which of the engine's voices it exposes, and
 * how audio is framed on the unified WebSocket: `binary` frames or `audio_chunk` JSON with base64
 * (shared/spec/protocols.md §1.5 — both exist in production).
 */
import { z } from 'zod';

/** SLNG model-id grammar (protocols.md §1.1); same as the STT catalogue's. */
const MODEL_CODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)+(?::[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** Wire dialects a `/v1/tts/...` route can answer in. */
export const TTS_DIALECTS = ['unified'] as const;
/** `unified`: SLNG unified TTS protocol (§1.5). */
export type TtsDialectName = (typeof TTS_DIALECTS)[number];

/** How audio travels on the unified TTS WebSocket. */
export const TTS_AUDIO_FRAMINGS = ['binary', 'base64'] as const;
/** `binary`: raw binary frames; `base64`: `{"type":"audio_chunk","data":…,"sequence":n}`. */
export type TtsAudioFraming = (typeof TTS_AUDIO_FRAMINGS)[number];

/** zod schema of one TTS catalogue entry (config file `tts.models[]`). */
export const ttsModelSchema = z.object({
  /** Catalogue code, e.g. `local/flite:en`. */
  code: z.string().regex(MODEL_CODE_RE, 'model code must match [slng/]<provider>/<model>[:<variant>]'),
  /** TTS engine instance id (key of `engines`, or a type id of the TTS registry: `flite`, `espeak-ng`). */
  engine: z.string().min(1),
  /**
   * Engine instances that may serve this model, in preference order, each with its region (issue 10
   * part 2). Absent = `[engine]`. Read with `modelBackends` (config.ts).
   */
  backends: z.array(z.string().min(1)).min(1).optional(),
  /** Wire dialect of `/v1/tts/<code>`; bridges always use `unified`. */
  dialect: z.enum(TTS_DIALECTS).default('unified'),
  /** Audio framing on the unified WebSocket. */
  audio: z.enum(TTS_AUDIO_FRAMINGS).default('binary'),
  /** Voice used when a request names none (and no `language` picks another); default: the first exposed voice. */
  defaultVoice: z.string().min(1).optional(),
  /** Expose only these engine voice ids (default: all the engine's voices). */
  voices: z.array(z.string().min(1)).min(1).optional(),
  /**
   * Voice mapping across providers (issue 11: "one provider's outage becomes another provider's
   * session"): `{<backend instance id>: {<catalogue voice id>: <that backend's voice id>}}`. A request
   * for voice V that fails over to backend B is spoken with `backendVoices[B][V]`; a backend without
   * an entry for V gets V itself. Voice ids are the engines' (lower-case) ids.
   */
  backendVoices: z.record(z.string().min(1), z.record(z.string().min(1), z.string().min(1))).optional(),
  name: z.string().optional(),
  description: z.string().optional(),
});
/** One TTS model entry of the catalogue. */
export type TtsModelEntry = z.infer<typeof ttsModelSchema>;

/** zod schema of `tts.limits` (every field has a default). Units are in the field names' docs. */
export const ttsLimitsSchema = z.object({
  /** Concurrent engine processes per engine; more jobs queue (FIFO). */
  maxConcurrentJobs: z.number().int().positive().default(8),
  /** A single segment's synthesis is killed (`provider_error`) after this many seconds. */
  jobTimeoutSeconds: z.number().positive().default(30),
  /**
   * Bytes of audio written to a session's socket but not yet taken by the kernel above which
   * synthesis pauses (the engine's pipe fills and it blocks) until the client reads.
   */
  maxBufferedBytes: z.number().int().positive().default(1024 * 1024),
  /**
   * Real-time pacing of WebSocket audio: a session sends audio at most this many seconds ahead of
   * real-time playback (a virtual player starting at the first audio), so a barge-in (`clear`) has
   * little audio in flight to overtake and an interrupted answer is not synthesised to the end.
   * 0 disables pacing (audio as fast as synthesised). Clients opt out per session with
   * `init.config.pacing: false` (unified) or `?pacing=false` (`/v1/speak`). HTTP is never paced.
   */
  realtimeLeadSeconds: z.number().min(0).default(3),
  /** A session whose client reads nothing for this long while audio is waiting gets `backpressure` and is closed. */
  backpressureTimeoutSeconds: z.number().positive().default(10),
  /** Text accepted but not yet synthesised, per session, characters; beyond it `text` is rejected with `backpressure`. */
  maxPendingChars: z.number().int().positive().default(100_000),
  /** Largest `text` of one unified `text` message, characters (`payload_too_large` beyond). */
  maxTextChars: z.number().int().positive().default(20_000),
  /** Largest text of one HTTP request, characters (HTTP 413 beyond). */
  maxHttpTextChars: z.number().int().positive().default(100_000),
  /** HTTP requests with more text than this are streamed (chunked, duration in a trailer) instead of buffered. */
  httpStreamThresholdChars: z.number().int().min(0).default(1000),
});
/** TTS limits, all defaults filled in. */
export type TtsLimits = z.infer<typeof ttsLimitsSchema>;

/** The `tts` section of a config file. */
export const ttsSectionSchema = z
  .object({
    models: z.array(ttsModelSchema).min(1).optional(),
    limits: ttsLimitsSchema.partial().optional(),
  })
  .strict();

/** Resolved TTS configuration. */
export interface TtsConfig {
  models: TtsModelEntry[];
  limits: TtsLimits;
}

/** The built-in TTS catalogue: both embedded engines, flite also with base64 `audio_chunk` framing, then the seed codes. */
export const DEFAULT_TTS_MODELS: TtsModelEntry[] = [
  {
    code: 'local/flite:en',
    engine: 'flite',
    dialect: 'unified',
    audio: 'binary',
    defaultVoice: 'kal16',
    name: 'Flite English (embedded)',
    description: 'CMU Flite 2.2 from Debian: US/Scottish English voices kal16, slt, rms, awb, kal. Binary audio frames.',
  },
  {
    code: 'local/flite:en-base64',
    engine: 'flite',
    dialect: 'unified',
    audio: 'base64',
    defaultVoice: 'kal16',
    name: 'Flite English (embedded), audio_chunk framing',
    description: 'Same engine; audio as {"type":"audio_chunk","data":<base64>,"sequence":n} messages.',
  },
  {
    code: 'local/espeak-ng:multi',
    engine: 'espeak-ng',
    dialect: 'unified',
    audio: 'binary',
    defaultVoice: 'en-us',
    name: 'eSpeak NG multilingual (embedded)',
    description: 'eSpeak NG 1.51 from Debian: ~130 languages including Hindi (hi), 22.05 kHz. Binary audio frames.',
  },
  // The seed clients' model codes (protocols.md §1.8; issue 10 part 2 "Catalogue"), on the unified TTS
  // dialect (§1.5) with binary audio (§1.6), served by flite until an upstream is configured. Aura
  // voice names (`aura-2-thalia-en`, …) map to the default English voice (session/tts_options.ts);
  // a non-English Aura voice is refused with config_error (flite speaks English only).
  {
    code: 'slng/deepgram/aura:2-en',
    engine: 'flite',
    dialect: 'unified',
    audio: 'binary',
    defaultVoice: 'kal16',
    name: 'Aura-2 English (SLNG-hosted code; embedded Flite until an upstream is configured)',
    description: 'Seed model code. Unified TTS protocol, binary audio; aura-2-*-en voices map to Flite kal16.',
  },
  {
    code: 'deepgram/aura:2',
    engine: 'flite',
    dialect: 'unified',
    audio: 'binary',
    defaultVoice: 'kal16',
    name: 'Deepgram Aura-2 (external code; embedded Flite, English only, until an upstream is configured)',
    description: 'Seed model code. Unified TTS protocol, binary audio; aura-2-*-en voices map to Flite kal16, other languages need an upstream.',
  },
];

/**
 * Resolve the `tts` section (defaults filled in).
 * @throws Error on duplicate model codes.
 */
export function resolveTtsConfig(section: z.infer<typeof ttsSectionSchema> | undefined): TtsConfig {
  const models = section?.models ?? DEFAULT_TTS_MODELS;
  const codes = new Set<string>();
  for (const m of models) {
    if (codes.has(m.code)) throw new Error(`duplicate TTS model code in catalogue: ${m.code}`);
    codes.add(m.code);
  }
  return { models, limits: ttsLimitsSchema.parse(section?.limits ?? {}) };
}
