/**
 * Engine type `slng`: relays each TTS segment to a server speaking the SLNG unified TTS protocol
 * (shared/spec/protocols.md §1.5) — SLNG's hosted API, or another voxgate acting as an engine
 * worker (its `/v1/tts/<code>` route; upstreams.md §2.3). Issue 10 part 2.
 *
 * Wire, per connection (one per voice and speed; settings are fixed at `init`, §1.5):
 *   `<url>/v1/tts/<model>` (or `<url-path>/tts/<model>` when `url` has a path, e.g.
 *   `wss://api.slng.ai/v1/bridges/unmute`), `Authorization: Bearer <key>`;
 *   → `{"type":"init","model":<model>,"voice":<voice>,"config":{"sample_rate","encoding":"linear16","speed"}}`;
 *   ← `ready` (a Deepgram-native `Metadata` is accepted too, §1.6);
 *   per segment → `{"type":"text","text":…,"flush":false}`, `{"type":"flush"}`;
 *   ← binary frames or `audio_chunk` {data: base64} … until `flushed` (or `Flushed`) / `audio_end`.
 *   `segment_start`/`segment_end`/`cleared`/unknown frames are ignored; malformed frames too.
 *
 * Settings (`engines.<id>`, type `slng`): `url` (required), `model` (required; the upstream's model
 * code, e.g. `local/flite:en` or `deepgram/aura:2`), `voices` (required: the upstream voices this
 * instance offers), `apiKeyEnv`, `sampleRate`, `initConfig` (extra `init.config` keys), `speed` (`{min,max}` the upstream accepts, or `null`
 * = speed cannot be changed; default null), `connectTimeoutMs`, `stallTimeoutMs`, `idleConnectionMs`.
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import type { TtsVoice } from '../types.js';
import {
  commonSettingsShape,
  parseInstanceSettings,
  readApiKey,
  redactorFor,
  toTtsVoices,
  upstreamCapabilities,
  upstreamVoiceSchema,
  withScheme,
  type Redactor,
  type UpstreamEvent,
  type UpstreamWire,
} from './common.js';
import { WsUpstreamTtsEngine, type WsEndpoint } from './ws_engine.js';

/** zod schema of an `slng` instance's settings (unknown keys rejected). */
export const slngTtsSettingsSchema = z
  .object({
    ...commonSettingsShape,
    /** The upstream's model code, placed in the route path and sent as `init.model`. */
    model: z.string().min(1),
    voices: z.array(upstreamVoiceSchema).min(1),
    /**
     * Extra keys merged into every `init.config` (e.g. `{"language": "en"}`, or `{"pacing": false}`
     * for a voxgate worker, whose real-time pacing is redundant behind a gateway that paces). The
     * keys voxgate sets (`sample_rate`, `encoding`, `speed`) win.
     */
    initConfig: z.record(z.string(), z.unknown()).default({}),
    /** Speed multipliers the upstream accepts (inclusive), or null when it cannot change speed. */
    speed: z
      .object({ min: z.number().positive(), max: z.number().positive() })
      .strict()
      .refine((s) => s.min <= 1 && s.max >= 1, 'the speed range must include 1')
      .nullable()
      .default(null),
  })
  .strict();
/** Validated `slng` settings. */
export type SlngTtsSettings = z.infer<typeof slngTtsSettingsSchema>;

/**
 * The route URL for `model` on the base `url` (protocols.md §1.1: model path URL-encoded with `/`
 * and `:` literal). A base without a path gets `/v1`.
 */
export function slngTtsUrl(url: string, model: string): string {
  const u = withScheme(url, 'ws');
  const prefix = u.pathname.replace(/\/+$/, '') || '/v1';
  u.pathname = `${prefix}/tts/${encodeURIComponent(model).replace(/%2F/gi, '/').replace(/%3A/gi, ':')}`;
  return u.toString();
}

/** Classify one SLNG unified TTS server frame (§1.5; Deepgram-native shapes of §1.6 too). */
export function classifySlngFrame(m: Record<string, unknown>): UpstreamEvent {
  switch (m.type) {
    case 'ready':
    case 'Metadata':
      return { kind: 'ready' };
    case 'audio_chunk':
      return typeof m.data === 'string' ? { kind: 'audio', data: Buffer.from(m.data, 'base64') } : { kind: 'ignore' };
    case 'flushed':
    case 'Flushed':
      return { kind: 'flushed' };
    case 'audio_end':
      return { kind: 'audio_end' };
    case 'error':
    case 'Error':
      return { kind: 'error', code: typeof m.code === 'string' ? m.code : undefined, message: String(m.message ?? m.description ?? 'upstream error') };
    default:
      return { kind: 'ignore' };
  }
}

/** The unified-protocol wire for one (voice, speed) session. */
export function slngWire(model: string, voice: TtsVoice, speed: number, upstreamVoiceId = voice.id, extraConfig: Record<string, unknown> = {}): UpstreamWire {
  return {
    openFrames: [JSON.stringify({ type: 'init', model, voice: upstreamVoiceId, config: { ...extraConfig, sample_rate: voice.sampleRate, encoding: 'linear16', speed } })],
    waitReady: true,
    classify: classifySlngFrame,
    segmentFrames: (text) => [JSON.stringify({ type: 'text', text, flush: false }), JSON.stringify({ type: 'flush' })],
  };
}

/**
 * Create an `slng` engine for instance `instanceId` of `cfg`.
 * @throws Error `engines.<id> (type slng) is invalid: …` for bad or unknown settings.
 */
export function createSlngTtsEngine(cfg: VoxgateConfig, instanceId: string): WsUpstreamTtsEngine {
  const s = parseInstanceSettings(slngTtsSettingsSchema, cfg, instanceId, 'slng');
  const voices = toTtsVoices(instanceId, s.voices, s.sampleRate);
  let key: string | undefined;
  let redact: Redactor = (t) => t;
  const url = slngTtsUrl(s.url, s.model);
  const upstreamIds = new Map(s.voices.map((v) => [v.id.toLowerCase(), v.id])); // sent with the upstream's own case
  return new WsUpstreamTtsEngine({
    instanceId,
    version: `slng:${s.model}`,
    capabilities: upstreamCapabilities(voices, s.speed),
    connectTimeoutMs: s.connectTimeoutMs,
    stallTimeoutMs: s.stallTimeoutMs,
    idleConnectionMs: s.idleConnectionMs,
    init() {
      key = readApiKey(instanceId, s.apiKeyEnv);
      redact = redactorFor(key);
    },
    endpoint: (voice, speed): WsEndpoint => ({ url, headers: key ? { Authorization: `Bearer ${key}` } : ({} as Record<string, string>), wire: slngWire(s.model, voice, speed, upstreamIds.get(voice.id), s.initConfig) }),
    redact: () => redact,
  });
}
