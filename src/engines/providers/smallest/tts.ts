/**
 * Engine type `smallest` (TTS): smallest.ai Lightning over the Waves TTS WebSocket
 * (shared/spec/upstreams.md §1.12, protocols.md §4.3; wire source: repo
 * `smallest-inc/smallest-ai-documentation` `fern/apis/waves/asyncapi/tts-ws.yaml` @01a5a15 and
 * `fern/products/waves/pages/api-references/concurrency-and-limits.mdx`; base64 PCM16 chunks as in
 * `smallest-inc/waves-examples` `lightning_v2/ws_streaming/ws_streaming_api.py`).
 *
 * Wire, one request per segment: `<host>/waves/v1/tts/live`, `Authorization: Bearer <key>`;
 * → `{"voice_id","text","model","sample_rate","speed","language","continue":false,"flush":true,
 * "complete_backoff_ms","request_id"}`; ← `{"status":"chunk","data":{"audio":<base64 PCM16 LE mono>}}`…
 * `{"status":"complete"}` (terminal: "the server closes the WebSocket after this", so connections are
 * never reused); `word_timestamp` frames are ignored; `{"status":"error","message"}` (also with
 * `error:{message,code}`) → retryable `provider_error` for the segment. Handshake errors as
 * src/engines/tts/upstream/common.ts `httpStatusError` (401/403 → `backend_connection_failed`,
 * 429 → `rate_limit`, 400 → `config_error`, 5xx → retryable `backend_connection_failed`).
 *
 * Concurrency: smallest allows **1 active TTS request per account** across all its TTS endpoints
 * (excess → 429 / an error frame). Each segment takes a slot of the account's limiter
 * (src/engines/limits.ts, account = `apiKeyEnv`; `maxConcurrent`, default 1) **before dialling** and
 * frees it at `complete` (or failure/abort); a segment that finds no slot within `queueWaitMs`
 * fails with a retryable `rate_limit`, which the session reports in its dialect (and the failover
 * engine moves to another backend when the model has one). The request path has no BYOK context, so
 * every TTS request counts against the configured account.
 *
 * Flush/clear/cancel: the gateway's segmenter sends one complete request per segment (`flush`
 * speaks what was pushed); `clear`/`cancel` abort the segment's request, which closes its socket —
 * smallest has no cancel message, and a closed socket stops its audio. `audio_end` = `complete`.
 * Hosts per region: settings.ts (TTS is not language-split: both hosts serve every voice).
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { accountLimiter, type ConcurrencyLimiter } from '../../limits.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../../tts/types.js';
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
  type UpstreamVoiceSetting,
  type UpstreamWire,
} from '../../tts/upstream/common.js';
import { WsUpstreamTtsEngine } from '../../tts/upstream/ws_engine.js';
import { defaultResidency, SMALLEST_HOSTS, smallestAccount } from './settings.js';

/** smallest's `speed` range (tts-ws.yaml). */
export const SMALLEST_SPEED = { min: 0.5, max: 2 } as const;
/** Output rates Lightning v3.1 produces (tts-ws.yaml `sample_rate`). */
export const SMALLEST_TTS_RATES = [8000, 16000, 24000, 44100] as const;

/**
 * Voices offered when the instance lists none: Lightning v3.1 voices named in smallest's docs
 * (tts-ws.yaml examples and the word-timestamp voice list). Genders are not in the stored docs.
 */
export const DEFAULT_SMALLEST_VOICES: UpstreamVoiceSetting[] = [
  { id: 'magnus', name: 'Magnus (Lightning v3.1)', languages: ['en'] },
  { id: 'liam', name: 'Liam (Lightning v3.1)', languages: ['en'] },
  { id: 'avery', name: 'Avery (Lightning v3.1)', languages: ['en'] },
  { id: 'meher', name: 'Meher (Lightning v3.1, Hindi/English)', languages: ['hi', 'en'] },
  { id: 'kartik', name: 'Kartik (Lightning v3.1, Hindi/English)', languages: ['hi', 'en'] },
];

/** Settings of a `smallest` TTS instance (`engines.<id>`), strict. Times in ms. */
export const smallestTtsSettingsSchema = z
  .object({
    ...commonSettingsShape,
    /** Base URL; default the residency's host (settings.ts). */
    url: commonSettingsShape.url.optional(),
    /** smallest region (host); default from the instance's region (settings.ts). */
    residency: z.enum(['in', 'us']).optional(),
    /** Endpoint path (`/waves/v1/lightning-v3.1/get_speech/stream` is the deprecated one, same protocol). */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9._~/-]*$/, 'path must start with "/"')
      .default('/waves/v1/tts/live'),
    /** `model` field of each request. */
    model: z.string().min(1).default('lightning_v3.1'),
    voices: z.array(upstreamVoiceSchema).min(1).default(DEFAULT_SMALLEST_VOICES),
    /** Output rate for every voice, Hz (one of 8000/16000/24000/44100). */
    sampleRate: z
      .number()
      .int()
      .refine((r) => (SMALLEST_TTS_RATES as readonly number[]).includes(r), `sampleRate must be one of ${SMALLEST_TTS_RATES.join(', ')}`)
      .default(24000),
    /** `complete_backoff_ms` of each request (smallest's default 4000 holds the account's one request slot 4 s after the last chunk). */
    completeBackoffMs: z.number().int().min(0).max(10000).default(0),
    /** Concurrent requests per account (`apiKeyEnv`): smallest allows 1. */
    maxConcurrent: z.number().int().positive().default(1),
    /** How long a segment waits for the account's slot before `rate_limit`, ms. */
    queueWaitMs: z.number().int().min(0).default(3000),
    /** Connections are one per request (the server closes after `complete`): no reuse. */
    idleConnectionMs: z.literal(0).default(0),
  })
  .strict();
/** Validated `smallest` TTS settings. */
export type SmallestTtsSettings = z.output<typeof smallestTtsSettingsSchema>;

/** Classify one Waves TTS server frame (tts-ws.yaml `TtsResponse`). */
export function classifySmallestTtsFrame(m: Record<string, unknown>): UpstreamEvent {
  switch (m.status) {
    case 'chunk': {
      const audio = (m.data as { audio?: unknown } | undefined)?.audio;
      return typeof audio === 'string' ? { kind: 'audio', data: Buffer.from(audio, 'base64') } : { kind: 'ignore' };
    }
    case 'complete':
      return { kind: 'audio_end' };
    case 'error': {
      const inner = typeof m.error === 'object' && m.error !== null ? (m.error as { message?: unknown; code?: unknown }) : undefined;
      const message = String(inner?.message ?? m.message ?? (typeof m.error === 'string' ? m.error : 'smallest.ai error'));
      return { kind: 'error', code: typeof inner?.code === 'string' ? inner.code : undefined, message };
    }
    default:
      return { kind: 'ignore' }; // word_timestamp, future statuses
  }
}

/** The request frame of one segment. */
export function smallestTtsRequest(s: Pick<SmallestTtsSettings, 'model' | 'completeBackoffMs'>, upstreamVoiceId: string, voice: TtsVoice, speed: number, text: string): Record<string, unknown> {
  return {
    voice_id: upstreamVoiceId,
    text,
    model: s.model,
    sample_rate: voice.sampleRate,
    speed,
    language: voice.languages[0]!.split('-')[0],
    continue: false,
    flush: true,
    complete_backoff_ms: s.completeBackoffMs,
  };
}

/** A per-segment engine over the Waves TTS socket with the account's request cap (module docs). */
export class SmallestTtsEngine implements TtsEngine {
  readonly id: string;
  readonly version: string;
  readonly capabilities: TtsCapabilities;
  /** The account's request limiter (shared by every instance on the same `apiKeyEnv`). */
  readonly limiter: ConcurrencyLimiter;
  private queued = 0;

  constructor(
    private readonly inner: WsUpstreamTtsEngine,
    private readonly s: SmallestTtsSettings,
  ) {
    this.id = inner.id;
    this.version = inner.version;
    this.capabilities = inner.capabilities;
    this.limiter = accountLimiter('smallest', smallestAccount(s.apiKeyEnv, 'tts'), s.maxConcurrent);
  }

  /** Reads the key (named by `apiKeyEnv`). @throws Error naming the variable when it is unset. */
  init(): Promise<void> {
    return this.inner.init();
  }

  /**
   * Speak one segment once the account has a free request slot. Iteration throws a retryable
   * `rate_limit` when no slot freed within `queueWaitMs`, an AbortError when `signal` aborts while
   * waiting, else as {@link WsUpstreamTtsEngine.synthesize}.
   */
  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const self = this;
    const inner = this.inner.synthesize(req, signal);
    async function* run(): AsyncGenerator<Int16Array> {
      self.queued++;
      let release: (() => void) | undefined;
      try {
        release = await self.limiter.acquire(self.s.queueWaitMs, signal);
      } finally {
        self.queued--;
      }
      try {
        yield* inner;
      } finally {
        release();
      }
    }
    const it = run();
    return { sampleRate: inner.sampleRate, [Symbol.asyncIterator]: () => it };
  }

  /** Upstream connections open now (one per request in flight). */
  get openConnections(): number {
    return this.inner.openConnections;
  }

  stats(): TtsEngineStats {
    const st = this.inner.stats();
    return { ...st, queuedJobs: st.queuedJobs + this.queued };
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/**
 * Registry factory of type `smallest` (TTS).
 * @throws Error `engines.<id> (type smallest) is invalid: …` for bad or unknown settings.
 */
export function createSmallestTtsEngine(cfg: VoxgateConfig, instanceId: string): SmallestTtsEngine {
  const s = parseInstanceSettings(smallestTtsSettingsSchema, cfg, instanceId, 'smallest');
  const residency = s.residency ?? defaultResidency(cfg, instanceId);
  const voices = toTtsVoices(instanceId, s.voices, s.sampleRate);
  const upstreamIds = new Map(s.voices.map((v) => [v.id.toLowerCase(), v.id]));
  const base = withScheme(s.url ?? SMALLEST_HOSTS[residency], 'ws');
  base.pathname = base.pathname.replace(/\/+$/, '') + s.path;
  const url = base.toString();
  let key: string | undefined;
  let redact: Redactor = (t) => t;
  const wire = (voice: TtsVoice, speed: number): UpstreamWire => ({
    openFrames: [],
    waitReady: false,
    classify: classifySmallestTtsFrame,
    segmentFrames: (text) => [JSON.stringify(smallestTtsRequest(s, upstreamIds.get(voice.id) ?? voice.id, voice, speed, text))],
  });
  const inner = new WsUpstreamTtsEngine({
    instanceId,
    version: `smallest:${s.model}`,
    capabilities: upstreamCapabilities(voices, SMALLEST_SPEED),
    connectTimeoutMs: s.connectTimeoutMs,
    stallTimeoutMs: s.stallTimeoutMs,
    idleConnectionMs: 0,
    init() {
      key = readApiKey(instanceId, s.apiKeyEnv);
      redact = redactorFor(key);
    },
    endpoint: (voice, speed) => ({ url, headers: key ? { Authorization: `Bearer ${key}` } : ({} as Record<string, string>), wire: wire(voice, speed) }),
    redact: () => redact,
  });
  return new SmallestTtsEngine(inner, s);
}
