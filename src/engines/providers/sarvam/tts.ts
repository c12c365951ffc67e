/**
 * Engine type `sarvam` (TTS): speaks each segment over Sarvam's streaming text-to-speech WebSocket,
 * model family bulbul (shared/spec/upstreams.md §1.11; sources: SV2 docs.sarvam.ai
 * `api-reference-docs/text-to-speech/stream`, `text-to-speech/which-api-to-use`, and the wire of
 * livekit/agents-js `plugins/sarvam/src/tts.ts` [LK-P]).
 *
 * ## Host (region)
 * `wss://api.sarvam.ai/text-to-speech/ws` (India; world part `ap`). `url` overrides the host; a `url`
 * without a path gets `/text-to-speech/ws`.
 *
 * ## Wire (one connection per voice and speed, reused across segments by ws_engine.ts's pool)
 * Upgrade `…/text-to-speech/ws?model=<model>&send_completion_event=true` with
 * `API-Subscription-Key: <key>`; first frame `{"type":"config","data":{"target_language_code","speaker",
 * "pace","speech_sample_rate","output_audio_codec":"linear16",…config}}` (`target_language_code` from
 * the voice's first language tag, `hi-in` → `hi-IN`; `pace` = the request's speed, 0.5–2.0; the speaker
 * is the voice's `speaker`, default its id). Per segment: `{"type":"text","data":{"text"}}` (text split
 * at ≤ 2500 characters, Sarvam's per-message cap) then `{"type":"flush"}`; the segment ends at
 * `{"type":"event","data":{"event_type":"final"}}` (the completion event of that flush). Audio arrives
 * as `{"type":"audio","data":{"audio":<base64 linear16>}}` (a WAV header, if Sarvam sends one, is skipped).
 * `{"type":"error","data":{message, code}}` fails the segment with a retryable `provider_error` (before
 * the first audio, TTS failover speaks the segment on the next backend). Handshake refusals as in
 * src/engines/tts/upstream/common.ts (`httpStatusError`).
 *
 * Unified mapping: `flush` = one segment's flush + completion event; `clear`/`cancel` abort the
 * segment, which closes its socket at once (Sarvam has no cancel message, so the connection is not
 * reused); `audio_end` follows the completion event. Limits: `maxConcurrent` active segments per
 * account (default 20) wait at most `queueWaitMs` before `rate_limit` (src/engines/limits.ts).
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { accountLimiter, type ConcurrencyLimiter } from '../../limits.js';
import type { TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../../tts/types.js';
import { commonSettingsShape, parseInstanceSettings, readApiKey, redactorFor, toTtsVoices, upstreamCapabilities, upstreamVoiceSchema, withScheme, type Redactor, type UpstreamEvent, type UpstreamWire } from '../../tts/upstream/common.js';
import { WsUpstreamTtsEngine, type WsEndpoint } from '../../tts/upstream/ws_engine.js';
import { sarvamLanguageCode } from './stt.js';

/** Default Sarvam TTS WebSocket. */
export const SARVAM_TTS_URL = 'wss://api.sarvam.ai/text-to-speech/ws';
/** Longest `text` per message (SV2). */
export const SARVAM_MAX_TEXT = 2500;

/** A configured Sarvam voice: a voxgate voice plus the Sarvam `speaker` it uses (default its id). */
export const sarvamVoiceSchema = upstreamVoiceSchema.extend({ speaker: z.string().min(1).optional() }).strict();

/** Settings of a `sarvam` TTS instance (`engines.<id>`), strict. */
export const sarvamTtsSettingsSchema = z
  .object({
    ...commonSettingsShape,
    url: commonSettingsShape.url.default(SARVAM_TTS_URL),
    /** bulbul model (`bulbul:v2`, `bulbul:v3`). */
    model: z.string().min(1).default('bulbul:v2'),
    /** Hz requested (`speech_sample_rate`): 8000, 16000, 22050 or 24000. */
    sampleRate: z.union([z.literal(8000), z.literal(16000), z.literal(22050), z.literal(24000)]).default(22050),
    voices: z
      .array(sarvamVoiceSchema)
      .min(1)
      .default([
        { id: 'anushka', name: 'Anushka (Hindi, bulbul:v2)', languages: ['hi-in', 'hi'], gender: 'female' },
        { id: 'abhilash', name: 'Abhilash (Hindi, bulbul:v2)', languages: ['hi-in', 'hi'], gender: 'male' },
      ]),
    /** Extra keys of the config message's `data` (e.g. `{"loudness": 1.2, "enable_preprocessing": true}`); voxgate's own keys win. */
    config: z.record(z.string(), z.unknown()).default({}),
    /** Concurrent segments of this account; enforced before dialling. */
    maxConcurrent: z.number().int().positive().default(20),
    /** How long a segment waits for a free slot before `rate_limit`, ms. */
    queueWaitMs: z.number().int().min(0).default(2000),
  })
  .strict();
/** Validated `sarvam` TTS settings. */
export type SarvamTtsSettings = z.output<typeof sarvamTtsSettingsSchema>;

/** The PCM of one Sarvam audio payload: base64-decoded, a leading WAV header skipped. */
export function sarvamPcm(b64: string): Buffer {
  const b = Buffer.from(b64, 'base64');
  if (b.length >= 44 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WAVE') {
    let o = 12;
    while (o + 8 <= b.length) {
      const id = b.toString('latin1', o, o + 4);
      const size = b.readUInt32LE(o + 4);
      if (id === 'data') return b.subarray(o + 8);
      o += 8 + size + (size & 1);
    }
    return Buffer.alloc(0);
  }
  return b;
}

/** Classify one Sarvam TTS server frame (module docs). */
export function classifySarvamFrame(m: Record<string, unknown>): UpstreamEvent {
  const d = (typeof m.data === 'object' && m.data !== null ? m.data : {}) as Record<string, unknown>;
  switch (m.type) {
    case 'audio':
      return typeof d.audio === 'string' ? { kind: 'audio', data: sarvamPcm(d.audio) } : { kind: 'ignore' };
    case 'event':
      return d.event_type === 'final' ? { kind: 'flushed' } : { kind: 'ignore' };
    case 'error':
      return { kind: 'error', ...(d.code !== undefined ? { code: String(d.code) } : {}), message: String(d.message ?? d.error ?? m.message ?? 'error') };
    default:
      return { kind: 'ignore' };
  }
}

/** Split `text` into pieces of at most `max` characters, at white space where possible. */
export function splitText(text: string, max = SARVAM_MAX_TEXT): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let cut = rest.lastIndexOf(' ', max);
    if (cut <= 0) cut = max;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest.length > 0 || out.length === 0) out.push(rest);
  return out;
}

/** The Sarvam TTS engine: {@link WsUpstreamTtsEngine} plus the account's concurrency cap. */
export class SarvamTtsEngine extends WsUpstreamTtsEngine {
  constructor(
    spec: ConstructorParameters<typeof WsUpstreamTtsEngine>[0],
    private readonly limiter: ConcurrencyLimiter,
    private readonly queueWaitMs: number,
  ) {
    super(spec);
  }

  /** As {@link WsUpstreamTtsEngine.synthesize}, after taking an account slot (`rate_limit` when none frees within `queueWaitMs`). */
  override synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const inner = super.synthesize(req, signal);
    const { limiter, queueWaitMs } = this;
    async function* run(): AsyncGenerator<Int16Array> {
      const release = await limiter.acquire(queueWaitMs, signal);
      try {
        yield* inner;
      } finally {
        release();
      }
    }
    const it = run();
    return { sampleRate: inner.sampleRate, [Symbol.asyncIterator]: () => it };
  }
}

/**
 * Registry factory of type `sarvam` (TTS).
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createSarvamTtsEngine(cfg: VoxgateConfig, instanceId: string): SarvamTtsEngine {
  const s = parseInstanceSettings(sarvamTtsSettingsSchema, cfg, instanceId, 'sarvam');
  const voices: TtsVoice[] = toTtsVoices(instanceId, s.voices, s.sampleRate);
  const speakers = new Map(s.voices.map((v) => [v.id.toLowerCase(), v.speaker ?? v.id]));
  let key: string | undefined;
  let redact: Redactor = (t) => t;
  const endpoint = (voice: TtsVoice, speed: number): WsEndpoint => {
    const u = withScheme(s.url, 'ws');
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/text-to-speech/ws';
    u.searchParams.set('model', s.model);
    u.searchParams.set('send_completion_event', 'true');
    const tag = voice.languages[0]!;
    const [lang, region] = tag.split('-');
    const target = region ? `${lang}-${region.toUpperCase()}` : sarvamLanguageCode(lang!);
    const config = { type: 'config', data: { ...s.config, target_language_code: target, speaker: speakers.get(voice.id) ?? voice.id, pace: speed, speech_sample_rate: voice.sampleRate, output_audio_codec: 'linear16' } };
    const wire: UpstreamWire = {
      openFrames: [JSON.stringify(config)],
      waitReady: false,
      classify: classifySarvamFrame,
      segmentFrames: (text) => [...splitText(text).map((t) => JSON.stringify({ type: 'text', data: { text: t } })), '{"type":"flush"}'],
    };
    return { url: u.toString(), headers: key ? { 'API-Subscription-Key': key } : {}, wire };
  };
  return new SarvamTtsEngine(
    {
      instanceId,
      version: s.model,
      capabilities: upstreamCapabilities(voices, { min: 0.5, max: 2 }),
      connectTimeoutMs: s.connectTimeoutMs,
      stallTimeoutMs: s.stallTimeoutMs,
      idleConnectionMs: s.idleConnectionMs,
      init() {
        key = readApiKey(instanceId, s.apiKeyEnv);
        redact = redactorFor(key);
      },
      endpoint,
      redact: () => redact,
    },
    accountLimiter('sarvam-tts', s.apiKeyEnv ?? `instance:${instanceId}`, s.maxConcurrent),
    s.queueWaitMs,
  );
}
