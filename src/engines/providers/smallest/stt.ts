/**
 * Engine type `smallest` (STT): relays a stream to smallest.ai Pulse streaming STT
 * (shared/spec/upstreams.md §1.12 over protocols.md §4.2; wire source: repo
 * `smallest-inc/smallest-ai-documentation` `fern/apis/waves/asyncapi/pulse-stt-ws.yaml` @012ff34,
 * `…/stt-live-ws.yaml`, `fern/apis/waves-v4/overrides/stt-live-ws-overrides.yml`). voxgate's own
 * `/waves/v1/pulse/get_text` (src/protocol/smallest/) is a faithful server for it.
 *
 * Wire: `GET <host><path>?language=…&encoding=linear16&sample_rate=16000&word_timestamps=true&
 * eou_timeout_ms=…&finalize_on_words=false[&vad_events=true][&model=pulse]` (path default
 * `/waves/v1/pulse/get_text`; `/waves/v1/stt/live` also works and then gets `model=<model>`),
 * `Authorization: Bearer <key>`, `X-Request-Id`; binary audio (linear16 16 kHz from the gateway, or a
 * passthrough encoding smallest takes: `linear16`, `mulaw`, `alaw`, `opus`, `ogg-opus` → `ogg_opus`);
 * `{"type":"finalize"}` per finalize; `{"type":"close_stream"}` once at close (the server emits the
 * last final with `is_last: true` and closes 1000). Hosts per region: settings.ts.
 *
 * Mapping of the server frames:
 * - `{session_id, transcript (or `transcription` on /stt/live), is_final, is_last, from_finalize,
 *   words[], language}`: `is_final: false` → `partial` (dropped when the stream has no partials;
 *   empty ones too); `is_final: true` → `final` with `fromFinalize` = `from_finalize` (one per
 *   finalize: the base's bookkeeping). `speech_final` = an automatic final (not from finalize): with
 *   `finalize_on_words=false` smallest finalizes on its own only after `eou_timeout_ms` of silence.
 *   An `is_last` final with no text is the close acknowledgement, not a result.
 * - Times: smallest's word times are seconds from the first audio frame of the connection = the
 *   stream's clock. A final's `start`/`duration` come from its words (first start, last end), else
 *   from the previous final's end to the audio written so far.
 * - `speech_started {timestamp}` → `speech_started`; `speech_ended` is not part of the unified model (ignored).
 * - Errors: `{"status":"error","error":{"message","code"}}` (§4.1) or `{"type":"error","message"}`
 *   (stt-live) → {@link upstreamFrameError} (codes `auth_error`… map; others → retryable `provider_error`,
 *   e.g. `LANGUAGE_NOT_ENABLED_IN_REGION`, so failover tries another region).
 *
 * Endpointing: `eou_timeout_ms` = the stream's `endpointingMs` clamped to 100–10000 (smallest's
 * range); without VAD or with endpointing off, 10000 (smallest has no "off"; finals then come from
 * finalize/close or after 10 s of silence).
 * Keepalive: smallest documents no STT keepalive message; the base's WebSocket pings (every
 * `pingIntervalMs` of upstream silence) keep the connection alive. `keepAliveFrame` sends a text
 * frame instead, should a deployment need one.
 * Limits: `maxConcurrent` (default unlimited; smallest publishes no STT number, it closes 1008 when
 * the org has too many sessions) + `queueWaitMs`, per account (`apiKeyEnv`), enforced before dialling
 * with src/engines/limits.ts; BYOK sessions skip it.
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import type { SMALLEST_ENCODINGS } from '../../../protocol/smallest/index.js';
import type { RequestContext } from '../../context.js';
import { accountLimiter, type ConcurrencyLimiter } from '../../limits.js';
import type { SttStreamConfig, SttWord } from '../../stt/types.js';
import {
  parseUpstreamSettings,
  upstreamFormat,
  upstreamFrameError,
  upstreamSettingsShape,
  UpstreamSttEngine,
  UpstreamSttStream,
  type UpstreamRequest,
} from '../../stt/upstream/common.js';
import { defaultResidency, pulseLanguages, SMALLEST_HOSTS, smallestAccount } from './settings.js';

/** Encodings smallest's `encoding` takes, by voxgate's canonical name (pulse-stt-ws.yaml; the values are the server side's {@link SMALLEST_ENCODINGS}). */
const SMALLEST_ENCODING: Readonly<Record<string, (typeof SMALLEST_ENCODINGS)[number]>> = { linear16: 'linear16', mulaw: 'mulaw', alaw: 'alaw', opus: 'opus', 'ogg-opus': 'ogg_opus' };
/** Query keys the engine sets itself. */
const MAPPED_QUERY = ['language', 'encoding', 'sample_rate', 'word_timestamps', 'eou_timeout_ms', 'vad_events', 'finalize_on_words', 'model'];

/** Settings of a `smallest` STT instance (`engines.<id>`), strict. Times in ms. */
export const smallestSttSettingsSchema = z
  .object({
    ...upstreamSettingsShape,
    /** Base URL; default the residency's host (settings.ts). */
    url: upstreamSettingsShape.url.optional(),
    /** Sent as `model` on `/waves/v1/stt/live` only (the `get_text` path has none). Default `pulse`. */
    model: z.string().min(1).default('pulse'),
    /** smallest region whose host is dialled and whose languages are served; default from the instance's region (settings.ts). */
    residency: z.enum(['in', 'us']).optional(),
    /** Languages this instance serves; default the residency's (settings.ts). */
    languages: z.array(z.string().min(2)).min(1).optional(),
    /** Endpoint path. */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9._~/-]*$/, 'path must start with "/"')
      .default('/waves/v1/pulse/get_text'),
    /** Fixed extra query parameters (e.g. `{"itn_normalize":"true"}`, `{"keywords":"voxgate:5"}`); may not set the mapped ones. */
    query: z
      .record(z.string().min(1), z.string())
      .default({})
      .refine((q) => !Object.keys(q).some((k) => MAPPED_QUERY.includes(k)), { message: `query may not set ${MAPPED_QUERY.join(', ')}` }),
    /** Text frame sent after `keepAliveMs` without traffic; `null` (default): none, WebSocket pings only. */
    keepAliveFrame: z.string().min(1).nullable().default(null),
    /** Concurrent streams per account (`apiKeyEnv`); absent = unlimited. */
    maxConcurrent: z.number().int().positive().optional(),
    /** How long a stream waits for a free slot before `rate_limit`, ms. */
    queueWaitMs: z.number().int().min(0).default(2000),
    /** smallest wants real-time cadence for live audio; failover replays at ≤ this pace. */
    replayPace: z.number().positive().nullable().default(1.25),
    passthroughEncodings: z.array(z.enum(['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus'])).default(['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus']),
  })
  .strict();
/** Validated `smallest` STT settings (before the residency defaults). */
export type SmallestSttSettings = z.output<typeof smallestSttSettingsSchema>;

const num = z.number().finite();
const wordSchema = z.object({ word: z.string(), start: num, end: num, confidence: num.optional(), speaker: z.union([z.number(), z.string()]).optional(), speaker_confidence: num.optional() }).loose();
/** A transcription frame (pulse-stt-ws.yaml `PulseTranscriptionResponse`; stt-live's `transcription` spelling too). */
const transcriptFrame = z
  .object({
    transcript: z.string().optional(),
    transcription: z.string().optional(),
    is_final: z.boolean().optional(),
    is_last: z.boolean().optional(),
    from_finalize: z.boolean().optional(),
    language: z.string().optional(),
    words: z.array(wordSchema).optional(),
  })
  .loose();
const vadFrame = z.object({ type: z.enum(['speech_started', 'speech_ended']), timestamp: num }).loose();
const errorFrame = z
  .object({ status: z.literal('error').optional(), type: z.literal('error').optional(), message: z.string().optional(), error: z.union([z.string(), z.object({ message: z.string().optional(), code: z.string().optional() }).loose()]).optional() })
  .loose();

function toWords(ws: readonly z.infer<typeof wordSchema>[]): SttWord[] {
  return ws.map((w) => ({
    word: w.word,
    start: w.start,
    end: Math.max(w.start, w.end),
    confidence: w.confidence ?? 0,
    ...(typeof w.speaker === 'number' ? { speaker: w.speaker } : {}),
    ...(w.speaker_confidence !== undefined ? { speakerConfidence: w.speaker_confidence } : {}),
  }));
}

/** A relayed Pulse stream (module docs for the mapping). A malformed frame is a retryable `provider_error`. */
export class SmallestSttStream extends UpstreamSttStream {
  protected onText(text: string): void {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('frame is not a JSON object');
    const j = json as Record<string, unknown>;
    if (j.status === 'error' || j.type === 'error') {
      const e = errorFrame.parse(j);
      const inner = typeof e.error === 'object' ? e.error : undefined;
      const message = inner?.message ?? (typeof e.error === 'string' ? e.error : undefined) ?? e.message ?? 'smallest.ai error';
      this.fail(upstreamFrameError(inner?.code ?? 'provider_error', message, this.o.secrets));
      return;
    }
    if (j.type === 'speech_started' || j.type === 'speech_ended') {
      const v = vadFrame.parse(j);
      if (v.type === 'speech_started') this.safeEmit('speech_started', { timestamp: v.timestamp });
      return;
    }
    if (j.type !== undefined && j.type !== 'transcription') return; // future event types
    const r = transcriptFrame.parse(j);
    const transcript = r.transcript ?? r.transcription ?? '';
    const words = toWords(r.words ?? []);
    const audioEnd = Math.max(this.audioSeconds, this.lastFinalEnd);
    const start = words.length > 0 ? words[0]!.start : this.lastFinalEnd;
    const end = words.length > 0 ? words[words.length - 1]!.end : audioEnd;
    if (!r.is_final) {
      if (!this.config.partials || !transcript) return;
      this.safeEmit('partial', { transcript, start, duration: Math.max(0, end - start), ...(this.config.wordTimestamps && words.length > 0 ? { words } : {}) });
      return;
    }
    const fromFinalize = r.from_finalize === true;
    // The close acknowledgement (`is_last` with nothing in it) is not a result.
    if (r.is_last && !transcript && !fromFinalize) return;
    const confidence = words.length > 0 ? words.reduce((a, w) => a + w.confidence, 0) / words.length : transcript ? 1 : 0;
    this.emitFinal(
      {
        transcript,
        confidence,
        ...(this.config.wordTimestamps ? { words } : {}),
        start,
        duration: Math.max(0, end - start),
        language: r.language ?? this.config.language,
        speechFinal: !fromFinalize && !r.is_last,
      },
      fromFinalize,
    );
  }
}

/** An engine instance relaying to one smallest.ai Pulse host. */
export class SmallestSttEngine extends UpstreamSttEngine {
  private readonly limiter: ConcurrencyLimiter | null;

  constructor(
    id: string,
    private readonly s: SmallestSttSettings & { url: string; languages: string[] },
  ) {
    super(id, s, {
      authScheme: 'Bearer',
      frames: { finalize: '{"type":"finalize"}', close: '{"type":"close_stream"}', keepalive: s.keepAliveFrame },
      createStream: (ws, config, o) => new SmallestSttStream(ws, config, o),
    });
    this.limiter = s.maxConcurrent !== undefined ? accountLimiter('smallest', smallestAccount(s.apiKeyEnv, 'stt'), s.maxConcurrent) : null;
  }

  /**
   * An account slot before dialling (unless BYOK or unlimited); the base releases it when the stream ends.
   * @throws VoxgateError `rate_limit` (retryable) when no slot freed within `queueWaitMs`.
   */
  protected override async acquireSlot(ctx: RequestContext | undefined): Promise<(() => void) | undefined> {
    if (!this.limiter || ctx?.providerKey) return undefined;
    return this.limiter.acquire(this.s.queueWaitMs, ctx?.signal);
  }

  protected request(config: SttStreamConfig): UpstreamRequest {
    const u = new URL(this.s.url);
    u.pathname = u.pathname.replace(/\/+$/, '') + this.s.path;
    const q = u.searchParams;
    if (/\/stt\/live$/.test(this.s.path)) q.set('model', this.s.model);
    q.set('language', config.language);
    const fmt = upstreamFormat(config);
    q.set('encoding', SMALLEST_ENCODING[fmt.encoding] ?? 'linear16');
    if (fmt.raw || fmt.encoding === 'opus') q.set('sample_rate', String(fmt.sampleRate));
    // Always asked: the words give finals their start/duration (they are relayed only when the client wants them).
    q.set('word_timestamps', 'true');
    const eou = config.vad && config.endpointingMs !== null ? Math.min(10000, Math.max(100, Math.round(config.endpointingMs))) : 10000;
    q.set('eou_timeout_ms', String(eou));
    q.set('finalize_on_words', 'false');
    if (config.vad) q.set('vad_events', 'true');
    for (const [k, v] of Object.entries(this.s.query)) q.set(k, v);
    return { url: u.toString() };
  }
}

/**
 * Registry factory of type `smallest` (STT).
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createSmallestSttEngine(cfg: VoxgateConfig, instanceId: string): SmallestSttEngine {
  const s = parseUpstreamSettings(smallestSttSettingsSchema, cfg, instanceId, 'smallest');
  const residency = s.residency ?? defaultResidency(cfg, instanceId);
  return new SmallestSttEngine(instanceId, { ...s, url: s.url ?? SMALLEST_HOSTS[residency], languages: s.languages ?? pulseLanguages(residency) });
}
