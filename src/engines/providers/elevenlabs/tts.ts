/**
 * Engine type `elevenlabs` (TTS): ElevenLabs text-to-speech WebSockets `stream-input` and
 * `multi-stream-input` as an upstream (issue 11; shared/spec/upstreams.md §1.4). Message names follow
 * the AsyncAPI spec [EL1: elevenlabs-docs `fern/apis/api/asyncapi.yml`] and the websocket guide [EL2].
 *
 * URL `wss://<host>/v1/text-to-speech/<voice_id>/<endpoint>?model_id=…&output_format=pcm_<voice Hz>&inactivity_timeout=<s>[&language_code][&auto_mode][&apply_text_normalization][&enable_ssml_parsing]`,
 * key in the `xi-api-key` header (host per residency: settings.ts). Audio is always base64 in JSON
 * (`{"audio": …}`), decoded to 16-bit PCM at the voice's rate (`output_format` = `pcm_<rate>`, so the
 * voice's rate must be one of 8000/16000/22050/24000/44100).
 *
 * ## Per segment (`synthesize`, used by the gateway's sessions and TTS failover)
 * On the pooled {@link WsUpstreamTtsEngine} (one warm socket per voice+speed):
 * - `endpoint: "stream-input"`: init `{"text":" ", voice_settings?, generation_config?}` at connect;
 *   the segment is `{"text":"<text> ","flush":true}` then the end `{"text":""}`; audio until
 *   `{"isFinal":true}`, after which the provider closes the socket — so a socket speaks one segment
 *   (a warm one is opened ahead by `prepare`); it has no clear, a barge-in closes the socket.
 * - `endpoint: "multi-stream-input"` (default): each segment is a fresh context on the warm socket:
 *   `{"text":" ","context_id":c, voice_settings?…}`, `{"text":"<text> ","context_id":c}`,
 *   `{"context_id":c,"flush":true}`, `{"context_id":c,"close_context":true}`; audio of context `c`
 *   until its `isFinal` (`is_final`; the spec mixes both, and `contextId`/`context_id`). Frames of
 *   other contexts are ignored. A stopped segment closes the socket (no zombie contexts).
 *
 * ## Streaming (`openStream`, multi-stream-input): {@link ElevenLabsTtsStream}
 * Text goes upstream as it arrives (whole words: an unfinished word waits for the next push or the
 * flush, as the provider wants text ending in a space). Contexts map to voxgate segments: the first
 * text after a flush/clear opens a context (`segment_start`); `flush()` sends the rest, `flush:true`
 * and `close_context:true`, and the context's `isFinal` ends the segment (`segment_end`, then
 * `flushed`); `clear()` closes every open context (`close_context`) and drops their audio; `close()`
 * sends `close_socket` and ends. Contexts generate in parallel upstream; audio is delivered in
 * context order. At most `maxContexts` (provider: 5 per socket, error `max_active_conversations`,
 * close 1008 [livekit/agents-js#1985]) are open upstream at once — closed-but-unanswered contexts
 * count too; further contexts wait, and a socket full of only closed contexts is replaced.
 * Keepalive: `{"text":"","context_id":c}` for the open context after `keepAliveMs` without a send
 * (within `inactivity_timeout`); a flushed context with no frame from the provider for
 * `stallTimeoutMs` fails the stream (retryable `provider_error`); a socket the provider closes normally while no context is open is
 * reopened for the next text.
 *
 * Alignment (`alignment`, `normalizedAlignment`) is read past: the TTS contract has no word-timing event.
 *
 * Errors: handshake per tts/upstream/common.ts `httpStatusError` (401/403 → non-retryable
 * `backend_connection_failed`; 429 → `rate_limit`; 5xx/network → retryable); an error frame
 * (`{"error"|"message", code?}`) or a close ≠ 1000 mid-segment → retryable `provider_error`
 * (per-segment path: the segment fails; stream: a frame naming a context fails that segment
 * (`segment_error`), otherwise the stream fails; the stream maps a key refusal to non-retryable
 * `backend_connection_failed` and quota/concurrency refusals to `rate_limit`: {@link elevenLabsTtsError}).
 * Provider concurrency (`maxConcurrent`): one slot per
 * running segment (per-segment) or per open stream, taken before dialling; `rate_limit` after `queueWaitMs`.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { VoxgateError, toVoxgateError } from '../../../util/errors.js';
import type { Release } from '../../limits.js';
import { abortError } from '../../tts/process.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsStream, TtsStreamEvent, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../../tts/types.js';
import {
  commonSettingsShape,
  errorBodyDetail,
  httpStatusError,
  networkError,
  parseInstanceSettings,
  PcmAssembler,
  redactorFor,
  segmentError,
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
import { AUTH_HEADER, elevenLabsBase, elevenLabsCommonShape, elevenLabsLimiter, PROVIDER } from './settings.js';

/** ElevenLabs `voice_settings.speed` range [EL1]. */
export const ELEVENLABS_SPEED = { min: 0.7, max: 1.2 } as const;
/** PCM rates `output_format` offers (`pcm_<rate>`) [EL1]. */
export const ELEVENLABS_PCM_RATES = [8000, 16000, 22050, 24000, 44100] as const;
/** Open contexts per multi-stream-input socket the provider allows (upstreams.md §1.4). */
export const ELEVENLABS_MAX_CONTEXTS = 5;

/** Voices offered when an instance lists none: ElevenLabs premade voices at 24 kHz (ids from the voice library). */
export const DEFAULT_ELEVENLABS_VOICES: UpstreamVoiceSetting[] = [
  { id: '21m00Tcm4TlvDq8ikWAM', name: 'Rachel (ElevenLabs)', languages: ['en-us', 'en'], gender: 'female', sampleRate: 24000 },
  { id: 'EXAVITQu4vr4xnSDxMaL', name: 'Bella/Sarah (ElevenLabs)', languages: ['en-us', 'en'], gender: 'female', sampleRate: 24000 },
  { id: 'pNInz6obpgDQGcFmaJgB', name: 'Adam (ElevenLabs)', languages: ['en-us', 'en'], gender: 'male', sampleRate: 24000 },
];

/** zod schema of an `elevenlabs` TTS instance's settings (unknown keys rejected). Times in ms unless named `…S`. */
export const elevenLabsTtsSettingsSchema = z
  .object({
    ...commonSettingsShape,
    ...elevenLabsCommonShape,
    /** Overrides the residency host. */
    url: commonSettingsShape.url.optional(),
    /** `model_id`. */
    model: z.string().min(1).default('eleven_flash_v2_5'),
    /** Which WebSocket: `multi-stream-input` (contexts; default) or `stream-input` (one utterance per socket). */
    endpoint: z.enum(['multi-stream-input', 'stream-input']).default('multi-stream-input'),
    voices: z.array(upstreamVoiceSchema).min(1).default(DEFAULT_ELEVENLABS_VOICES),
    /** `voice_settings` sent with each init (speed is added from the request). */
    voiceSettings: z
      .object({ stability: z.number().min(0).max(1).optional(), similarity_boost: z.number().min(0).max(1).optional(), style: z.number().min(0).max(1).optional(), use_speaker_boost: z.boolean().optional() })
      .strict()
      .optional(),
    /** `generation_config.chunk_length_schedule` (each 50–500 characters). */
    chunkLengthSchedule: z.array(z.number().int().min(50).max(500)).min(1).optional(),
    /** `inactivity_timeout` query value, seconds (provider default 20, max 180). */
    inactivityTimeoutS: z.number().int().min(1).max(180).default(20),
    /** Streaming keepalive after this long without a send, ms (must be below `inactivityTimeoutS`). */
    keepAliveMs: z.number().int().positive().default(10_000),
    /** `language_code` (Turbo/Flash v2.5 only). */
    languageCode: z.string().min(2).optional(),
    /** `auto_mode`. */
    autoMode: z.boolean().optional(),
    /** `apply_text_normalization`. */
    applyTextNormalization: z.enum(['auto', 'on', 'off']).optional(),
    /** `enable_ssml_parsing`. */
    enableSsmlParsing: z.boolean().optional(),
    /** Contexts open upstream at once on one streaming socket (provider limit 5). */
    maxContexts: z.number().int().min(1).max(ELEVENLABS_MAX_CONTEXTS).default(ELEVENLABS_MAX_CONTEXTS),
  })
  .strict();
/** Validated `elevenlabs` TTS settings. */
export type ElevenLabsTtsSettings = z.infer<typeof elevenLabsTtsSettingsSchema>;

/** The WebSocket URL of `endpoint` for one upstream voice id and PCM rate. */
export function elevenLabsTtsUrl(s: ElevenLabsTtsSettings, endpoint: ElevenLabsTtsSettings['endpoint'], voiceId: string, rate: number): string {
  const u = withScheme(elevenLabsBase(s), 'ws');
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/text-to-speech/${encodeURIComponent(voiceId)}/${endpoint}`;
  const q = u.searchParams;
  q.set('model_id', s.model);
  q.set('output_format', `pcm_${rate}`);
  q.set('inactivity_timeout', String(s.inactivityTimeoutS));
  if (s.languageCode) q.set('language_code', s.languageCode);
  if (s.autoMode !== undefined) q.set('auto_mode', String(s.autoMode));
  if (s.applyTextNormalization) q.set('apply_text_normalization', s.applyTextNormalization);
  if (s.enableSsmlParsing !== undefined) q.set('enable_ssml_parsing', String(s.enableSsmlParsing));
  return u.toString();
}

/** The init message's settings part: `voice_settings` (with `speed` when ≠ 1) and `generation_config`. */
function initExtras(s: ElevenLabsTtsSettings, speed: number): Record<string, unknown> {
  const vs: Record<string, unknown> = { ...(s.voiceSettings ?? {}) };
  if (speed !== 1) vs.speed = speed;
  return {
    ...(Object.keys(vs).length > 0 ? { voice_settings: vs } : {}),
    ...(s.chunkLengthSchedule ? { generation_config: { chunk_length_schedule: s.chunkLengthSchedule } } : {}),
  };
}

/** The context id a server frame names (`contextId` or `context_id`), if any. */
function frameContext(m: Record<string, unknown>): string | undefined {
  const c = m.contextId ?? m.context_id;
  return typeof c === 'string' ? c : undefined;
}

/** True for a frame that ends an utterance/context (`isFinal` / `is_final`). */
function frameFinal(m: Record<string, unknown>): boolean {
  return m.isFinal === true || m.is_final === true;
}

/** The error text of a frame, or undefined when it is not an error (`{"error": …}` or `{"message": …}` without audio). */
function frameError(m: Record<string, unknown>): { code?: string; message: string } | undefined {
  if (typeof m.audio === 'string' && m.audio) return undefined;
  if (typeof m.error === 'string' || (typeof m.message === 'string' && !frameFinal(m))) {
    const code = typeof m.error === 'string' ? m.error : undefined;
    return { code, message: typeof m.message === 'string' ? m.message : (code ?? 'upstream error') };
  }
  return undefined;
}

/**
 * The per-segment wire of one socket (see the module docs). Multi-stream-input: each segment is a new
 * context; frames of any other context are ignored.
 */
export function elevenLabsWire(s: ElevenLabsTtsSettings, speed: number, endpoint: ElevenLabsTtsSettings['endpoint'] = s.endpoint): UpstreamWire {
  const extras = initExtras(s, speed);
  if (endpoint === 'stream-input') {
    return {
      openFrames: [JSON.stringify({ text: ' ', ...extras })],
      waitReady: false,
      classify(m): UpstreamEvent {
        const err = frameError(m);
        if (err) return { kind: 'error', ...err };
        if (typeof m.audio === 'string' && m.audio) return { kind: 'audio', data: Buffer.from(m.audio, 'base64') };
        if (frameFinal(m)) return { kind: 'audio_end' };
        return { kind: 'ignore' };
      },
      segmentFrames: (text) => [JSON.stringify({ text: `${text} `, flush: true }), JSON.stringify({ text: '' })],
    };
  }
  let current: string | null = null;
  return {
    openFrames: [],
    waitReady: false,
    classify(m): UpstreamEvent {
      const ctx = frameContext(m);
      if (ctx !== undefined && ctx !== current) return { kind: 'ignore' };
      const err = frameError(m);
      if (err) return { kind: 'error', ...err };
      if (typeof m.audio === 'string' && m.audio) return { kind: 'audio', data: Buffer.from(m.audio, 'base64') };
      if (frameFinal(m)) return { kind: 'audio_end' };
      return { kind: 'ignore' };
    },
    segmentFrames(text) {
      const c = `seg_${randomUUID()}`;
      current = c;
      return [
        JSON.stringify({ text: ' ', context_id: c, ...extras }),
        JSON.stringify({ text: `${text} `, context_id: c }),
        JSON.stringify({ context_id: c, flush: true }),
        JSON.stringify({ context_id: c, close_context: true }),
      ];
    },
  };
}

/**
 * The error of a TTS error frame on the streaming session: the provider refusing the gateway's key
 * (`code`/message naming an API key, `invalid_api_key`, `auth_error`, unauthorized) → non-retryable
 * `backend_connection_failed`; quota / concurrency (`quota_exceeded`, `too_many_concurrent_requests`,
 * `system_busy`, `rate_limit…` [EL2 error-messages]) → retryable `rate_limit`; anything else
 * (e.g. `max_active_conversations`) → retryable `provider_error`. `message` must be redacted already.
 */
export function elevenLabsTtsError(instanceId: string, code: string | undefined, message: string): VoxgateError {
  const text = `${code ?? ''} ${message}`;
  const m = `upstream ${instanceId}: ${code ? `${code}: ` : ''}${message.slice(0, 200)}`;
  if (/api[_ ]?key|auth_error|unauthori[sz]ed|authenticat/i.test(text)) return new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${instanceId}: upstream rejected the API key (${message.slice(0, 200)})`, { retryable: false });
  if (/quota|too_many_concurrent|system_busy|rate_limit/i.test(text)) return new VoxgateError('rate_limit', m, { retryable: true });
  return new VoxgateError('provider_error', m, { retryable: true });
}

// ---------------------------------------------------------------- streaming

/** One context of a {@link ElevenLabsTtsStream} = one voxgate segment. */
interface Ctx {
  id: string;
  segmentId: string;
  text: string;
  gen: number;
  /** Sent upstream (within the open-contexts cap); frames wait in `outbox` until then. */
  opened: boolean;
  outbox: string[];
  /** `flush` + `close_context` were sent (or queued). */
  closed: boolean;
  /** `isFinal` arrived. */
  done: boolean;
  /** `segment_start` was emitted. */
  started: boolean;
  /** `flushed` events owed after this segment ends. */
  flushes: number;
  asm: PcmAssembler;
  /** PCM received and not yet delivered (a later context's audio waits here until the earlier ones ended). */
  audio: Int16Array[];
  error: Error | null;
}

/** What a streaming session needs from its engine. */
interface StreamDeps {
  instanceId: string;
  s: ElevenLabsTtsSettings;
  voice: TtsVoice;
  upstreamVoiceId: string;
  speed: number;
  key(): string | undefined;
  redact(): Redactor;
  onEnd(): void;
}

/** Unread audio above which the upstream socket is paused, bytes. */
const PAUSE_BYTES = 1 << 20;

/**
 * A native streaming session on `multi-stream-input` (module docs, "Streaming"). Never throws from
 * its methods; a stream-level failure (handshake refused, socket lost with contexts open, error frame
 * naming no context) makes iteration throw the `VoxgateError`.
 */
export class ElevenLabsTtsStream implements TtsStream {
  readonly sampleRate: number;
  private gen = 0;
  private ws: WebSocket | null = null;
  private wsOpen = false;
  private connecting = false;
  /** Frames waiting for the socket to open. */
  private pendingFrames: string[] = [];
  private cur: Ctx | null = null;
  private ctxs: Ctx[] = [];
  /** Contexts closed by clear() whose `isFinal` has not come: they still count against the provider's cap. */
  private zombies = new Set<string>();
  private carry = '';
  private segCount = 0;
  private ctxCount = 0;
  private readonly events: TtsStreamEvent[] = [];
  private queuedBytes = 0;
  private paused = false;
  private failure: Error | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private lastTx = performance.now();
  private lastRx = performance.now();
  private readonly ticker: NodeJS.Timeout;
  private release: Release | null = null;
  private slot: Promise<void> | null = null;

  constructor(private readonly d: StreamDeps) {
    this.sampleRate = d.voice.sampleRate;
    this.ticker = setInterval(() => this.keepAlive(), Math.max(50, Math.floor(Math.min(d.s.keepAliveMs, d.s.stallTimeoutMs) / 4)));
    this.ticker.unref();
  }

  get generation(): number {
    return this.gen;
  }

  get pendingChars(): number {
    return this.ctxs.reduce((n, c) => n + (c.done ? 0 : c.text.length), 0);
  }

  get busy(): boolean {
    return this.ctxs.length > 0 || this.events.length > 0;
  }

  pushText(text: string): void {
    if (this.closed || !text) return;
    if (!this.cur) this.cur = this.newContext();
    const c = this.cur;
    c.text += text;
    this.carry += text;
    const cut = Math.max(this.carry.lastIndexOf(' '), this.carry.lastIndexOf('\n'), this.carry.lastIndexOf('\t'));
    if (cut >= 0) {
      const words = this.carry.slice(0, cut + 1);
      this.carry = this.carry.slice(cut + 1);
      if (words.trim()) this.sendCtx(c, { text: words, context_id: c.id });
    }
  }

  flush(): void {
    if (this.closed) return;
    const c = this.cur;
    if (c) {
      if (this.carry.trim()) this.sendCtx(c, { text: `${this.carry} `, context_id: c.id });
      this.carry = '';
      this.sendCtx(c, { context_id: c.id, flush: true });
      this.sendCtx(c, { context_id: c.id, close_context: true });
      c.closed = true;
      c.flushes++;
      this.cur = null;
    } else if (this.ctxs.length > 0) this.ctxs[this.ctxs.length - 1]!.flushes++;
    else this.events.push({ kind: 'flushed', gen: this.gen });
    this.pump();
  }

  clear(): void {
    this.gen++;
    for (const c of this.ctxs) {
      if (c.opened && !c.done) {
        if (!c.closed) this.sendRaw(JSON.stringify({ context_id: c.id, close_context: true }));
        this.zombies.add(c.id);
      }
    }
    this.ctxs = [];
    this.cur = null;
    this.carry = '';
    this.events.length = 0;
    this.queuedBytes = 0;
    this.resume();
    this.wakeUp();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    this.ctxs = [];
    this.events.length = 0;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        if (this.wsOpen) ws.send(JSON.stringify({ close_socket: true }));
        ws.close(1000, 'done');
      } catch {
        /* already gone */
      }
      setTimeout(() => ws.terminate(), 1000).unref();
    }
    this.release?.();
    this.release = null;
    this.d.onEnd();
    this.wakeUp();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TtsStreamEvent> {
    for (;;) {
      const ev = this.events.shift();
      if (ev) {
        if (ev.kind === 'audio') {
          this.queuedBytes -= ev.pcm.byteLength;
          if (this.paused && this.queuedBytes < PAUSE_BYTES / 2) this.resume();
        }
        yield ev;
        continue;
      }
      if (this.closed) return;
      if (this.failure) {
        const f = this.failure;
        this.close();
        throw f;
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  // ------------------------------------------------------------ contexts

  private newContext(): Ctx {
    const c: Ctx = {
      id: `ctx_${++this.ctxCount}_${randomUUID().slice(0, 8)}`,
      segmentId: `seg_${String(++this.segCount).padStart(3, '0')}`,
      text: '',
      gen: this.gen,
      opened: false,
      outbox: [],
      closed: false,
      done: false,
      started: false,
      flushes: 0,
      asm: new PcmAssembler(),
      audio: [],
      error: null,
    };
    this.ctxs.push(c);
    c.outbox.push(JSON.stringify({ text: ' ', context_id: c.id, ...initExtras(this.d.s, this.d.speed) }));
    this.openContexts();
    return c;
  }

  /** Upstream-open contexts now: opened and unanswered, plus closed-by-clear ones still unanswered. */
  private openCount(): number {
    return this.ctxs.filter((c) => c.opened && !c.done).length + this.zombies.size;
  }

  /** Open waiting contexts, in order, while under the cap; a socket full of only cleared contexts is replaced. */
  private openContexts(): void {
    for (const c of this.ctxs) {
      if (c.opened) continue;
      if (this.openCount() >= this.d.s.maxContexts) {
        if (this.ctxs.every((x) => !x.opened || x.done) && this.zombies.size > 0) this.replaceSocket();
        else return;
      }
      c.opened = true;
      for (const f of c.outbox.splice(0)) this.sendRaw(f);
    }
  }

  private sendCtx(c: Ctx, msg: Record<string, unknown>): void {
    const f = JSON.stringify(msg);
    if (c.opened) this.sendRaw(f);
    else c.outbox.push(f);
  }

  private sendRaw(frame: string): void {
    if (this.closed || this.failure) return;
    if (!this.ws) this.connect();
    if (!this.wsOpen) {
      this.pendingFrames.push(frame);
      return;
    }
    this.lastTx = performance.now();
    try {
      this.ws!.send(frame);
    } catch (err) {
      this.fail(segmentError(this.d.instanceId, `send failed: ${(err as Error).message}`));
    }
  }

  /** Watchdog tick: a flushed context waiting with no frame from the provider for `stallTimeoutMs` fails the stream; else the keepalive. */
  private keepAlive(): void {
    if (this.closed || !this.wsOpen) return;
    const now = performance.now();
    if (now - this.lastRx > this.d.s.stallTimeoutMs && now - this.lastTx > this.d.s.stallTimeoutMs && this.ctxs.some((c) => c.opened && c.closed && !c.done)) {
      this.fail(segmentError(this.d.instanceId, `no audio or message from upstream for ${this.d.s.stallTimeoutMs} ms`));
      return;
    }
    if (now - this.lastTx < this.d.s.keepAliveMs) return;
    const c = this.cur ?? this.ctxs.find((x) => x.opened && !x.done);
    if (c?.opened) this.sendRaw(JSON.stringify({ text: '', context_id: c.id }));
  }

  /** Deliver the head contexts' events in order: segment_start, its audio so far, and once it is final segment_end (+ flushed). */
  private pump(): void {
    while (this.ctxs.length > 0) {
      const h = this.ctxs[0]!;
      if (!h.started) {
        if (!h.done && h.text === '' && h.audio.length === 0) break;
        h.started = true;
        this.events.push({ kind: 'segment_start', segmentId: h.segmentId, text: h.text, gen: h.gen });
      }
      for (const pcm of h.audio.splice(0)) this.events.push({ kind: 'audio', pcm, gen: h.gen });
      if (!h.done) break;
      if (h.error) this.events.push({ kind: 'segment_error', segmentId: h.segmentId, error: h.error, gen: h.gen });
      this.events.push({ kind: 'segment_end', segmentId: h.segmentId, gen: h.gen });
      for (let i = 0; i < h.flushes; i++) this.events.push({ kind: 'flushed', gen: h.gen });
      this.ctxs.shift();
    }
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private resume(): void {
    if (this.paused) {
      this.paused = false;
      this.ws?.resume();
    }
  }

  /** A stream-level failure: iteration throws it once the events before it are consumed. */
  private fail(err: Error): void {
    if (this.closed || this.failure) return;
    this.failure = err;
    this.wakeUp();
  }

  // ------------------------------------------------------------ socket

  private replaceSocket(): void {
    const old = this.ws;
    this.ws = null;
    this.wsOpen = false;
    this.connecting = false;
    this.zombies.clear();
    if (old) {
      old.removeAllListeners();
      old.on('error', () => {});
      try {
        old.close(1000, 'replaced');
      } catch {
        old.terminate();
      }
    }
  }

  private connect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    const s = this.d.s;
    void (async () => {
      if (s.maxConcurrent !== undefined && !this.release && !this.slot) {
        this.slot = elevenLabsLimiter(s)
          .acquire(s.queueWaitMs)
          .then((r) => {
            if (this.closed) r();
            else this.release = r;
          });
      }
      try {
        await this.slot;
      } catch (err) {
        this.connecting = false;
        this.fail(toVoxgateError(err));
        return;
      }
      if (this.closed) return;
      let key: string | undefined;
      try {
        key = this.d.key();
      } catch (err) {
        this.connecting = false;
        this.fail(new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${(err as Error).message}`, { retryable: true }));
        return;
      }
      const url = elevenLabsTtsUrl(s, 'multi-stream-input', this.d.upstreamVoiceId, this.sampleRate);
      const ws = new WebSocket(url, { headers: key ? { [AUTH_HEADER]: key } : {}, perMessageDeflate: false, handshakeTimeout: s.connectTimeoutMs, maxPayload: 16 << 20 });
      this.ws = ws;
      const redact = this.d.redact();
      ws.on('unexpected-response', (req, res) => {
        const chunks: Buffer[] = [];
        const done = (): void => {
          req.destroy();
          if (this.ws === ws) this.fail(httpStatusError(this.d.instanceId, res.statusCode ?? 0, redact(errorBodyDetail(Buffer.concat(chunks).toString('utf8')))));
        };
        res.on('data', (c: Buffer) => chunks.length < 8 && chunks.push(c));
        res.on('end', done);
        res.on('error', done);
      });
      ws.on('error', (err) => {
        if (this.ws !== ws) return;
        this.fail(this.wsOpen ? segmentError(this.d.instanceId, `socket error: ${redact(err.message)}`) : networkError(this.d.instanceId, err));
      });
      ws.on('open', () => {
        if (this.ws !== ws) return;
        this.connecting = false;
        this.wsOpen = true;
        for (const f of this.pendingFrames.splice(0)) this.sendRaw(f);
      });
      ws.on('message', (data, isBinary) => {
        if (this.ws !== ws || isBinary) return;
        this.lastRx = performance.now();
        let m: unknown;
        try {
          m = JSON.parse(data.toString());
        } catch {
          return;
        }
        if (m && typeof m === 'object' && !Array.isArray(m)) this.onFrame(m as Record<string, unknown>);
      });
      ws.on('close', (code, reason) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.wsOpen = false;
        this.connecting = false;
        this.zombies.clear();
        const live = this.ctxs.some((c) => c.opened && !c.done);
        if (code === 1000 && !live) {
          // The provider closed an idle socket (inactivity): contexts not yet opened go on a new one.
          for (const c of this.ctxs) if (!c.done) c.opened = false;
          if (this.ctxs.some((c) => !c.done)) this.openContexts();
          return;
        }
        const why = redact(reason.toString()).slice(0, 120);
        this.fail(/api[_ ]?key|unauthori[sz]ed|authenticat/i.test(why) ? elevenLabsTtsError(this.d.instanceId, 'auth_error', why) : segmentError(this.d.instanceId, `connection closed (${code}${why ? ` ${why}` : ''})`));
      });
    })();
  }

  private onFrame(m: Record<string, unknown>): void {
    const id = frameContext(m);
    const err = frameError(m);
    const c = id !== undefined ? this.ctxs.find((x) => x.id === id) : this.ctxs.find((x) => x.opened && !x.done);
    if (id !== undefined && this.zombies.has(id)) {
      if (frameFinal(m) || err) {
        this.zombies.delete(id);
        this.openContexts();
      }
      return;
    }
    if (err) {
      const e = elevenLabsTtsError(this.d.instanceId, err.code, this.d.redact()(err.message));
      if (c && id !== undefined) {
        c.error = e;
        c.done = true;
        this.pump();
        this.openContexts();
      } else this.fail(e);
      return;
    }
    if (!c) return;
    if (typeof m.audio === 'string' && m.audio) {
      const pcm = c.asm.push(Buffer.from(m.audio, 'base64'));
      if (pcm.length > 0) {
        c.audio.push(pcm);
        this.queuedBytes += pcm.byteLength;
        if (this.queuedBytes > PAUSE_BYTES && !this.paused && this.ws) {
          this.paused = true;
          this.ws.pause();
        }
        if (this.ctxs[0] === c) this.pump();
      }
    }
    if (frameFinal(m)) {
      c.done = true;
      this.pump();
      this.openContexts();
    }
  }

}

// ---------------------------------------------------------------- engine

/**
 * The `elevenlabs` TTS engine: per-segment synthesis on the pooled socket engine, a native
 * streaming session ({@link openStream}) on multi-stream-input, and the account's concurrency cap.
 */
export class ElevenLabsTtsEngine implements TtsEngine {
  readonly id: string;
  readonly version: string;
  readonly capabilities: TtsCapabilities;
  private readonly inner: WsUpstreamTtsEngine;
  private key: string | undefined;
  private redact: Redactor = (t) => t;
  private readonly upstreamIds: Map<string, string>;
  private streams = 0;

  constructor(
    id: string,
    private readonly s: ElevenLabsTtsSettings,
  ) {
    this.id = id;
    this.version = s.model;
    const voices = toTtsVoices(id, s.voices, s.sampleRate, 24000);
    for (const v of voices) {
      if (!(ELEVENLABS_PCM_RATES as readonly number[]).includes(v.sampleRate)) throw new Error(`engines.${id} (type elevenlabs): voice "${v.id}" rate ${v.sampleRate} Hz is not an ElevenLabs pcm_ output format (${ELEVENLABS_PCM_RATES.join(', ')})`);
    }
    if (s.keepAliveMs >= s.inactivityTimeoutS * 1000) throw new Error(`engines.${id} (type elevenlabs): keepAliveMs (${s.keepAliveMs}) must be below inactivityTimeoutS (${s.inactivityTimeoutS} s)`);
    if (s.idleConnectionMs >= s.inactivityTimeoutS * 1000) throw new Error(`engines.${id} (type elevenlabs): idleConnectionMs (${s.idleConnectionMs}) must be below inactivityTimeoutS (${s.inactivityTimeoutS} s)`);
    this.capabilities = upstreamCapabilities(voices, { ...ELEVENLABS_SPEED });
    this.upstreamIds = new Map(s.voices.map((v) => [v.id.toLowerCase(), v.id]));
    this.inner = new WsUpstreamTtsEngine({
      instanceId: id,
      version: s.model,
      capabilities: this.capabilities,
      connectTimeoutMs: s.connectTimeoutMs,
      stallTimeoutMs: s.stallTimeoutMs,
      idleConnectionMs: s.idleConnectionMs,
      init: () => {},
      endpoint: (voice, speed) => ({
        url: elevenLabsTtsUrl(s, s.endpoint, this.upstreamIds.get(voice.id) ?? voice.id, voice.sampleRate),
        headers: this.key ? { [AUTH_HEADER]: this.key } : ({} as Record<string, string>),
        wire: elevenLabsWire(s, speed),
      }),
      redact: () => this.redact,
      // stream-input: the provider closes the socket after each utterance, so only an unused (warm) socket is reused.
      reusable: s.endpoint === 'stream-input' ? (c) => c.flushTimes.length === 0 : undefined,
    });
  }

  /**
   * Read the key named by `apiKeyEnv`.
   * @throws Error naming the instance and the variable when it is unset.
   */
  async init(): Promise<void> {
    const v = process.env[this.s.apiKeyEnv];
    if (!v) throw new Error(`engines.${this.id}: the environment variable ${this.s.apiKeyEnv} (apiKeyEnv) is not set`);
    this.key = v;
    this.redact = redactorFor(v);
    await this.inner.init();
  }

  /**
   * Speak one segment (module docs, "Per segment"). A slot of `maxConcurrent` is held while it runs.
   * Iteration throws as {@link WsUpstreamTtsEngine.synthesize}, or `rate_limit` when no slot frees within `queueWaitMs`.
   */
  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const inner = this.inner;
    const s = this.s;
    const v = this.capabilities.voices.find((x) => x.id === req.voice.toLowerCase());
    const sampleRate = v?.sampleRate ?? this.capabilities.voices[0]!.sampleRate;
    async function* run(): AsyncGenerator<Int16Array> {
      let release: Release | undefined;
      if (s.maxConcurrent !== undefined) {
        if (signal?.aborted) throw abortError();
        release = await elevenLabsLimiter(s).acquire(s.queueWaitMs, signal);
      }
      try {
        yield* inner.synthesize(req, signal);
      } finally {
        release?.();
      }
    }
    const it = run();
    return { sampleRate, [Symbol.asyncIterator]: () => it };
  }

  prepare(req: Omit<TtsSynthesisRequest, 'text'>): void {
    this.inner.prepare(req);
  }

  /**
   * A native streaming session on multi-stream-input (module docs, "Streaming"), whatever `endpoint` the
   * per-segment path uses. The voice must be one of the capabilities' (validated by the caller); an
   * unknown one falls back to the first voice.
   */
  openStream(req: Omit<TtsSynthesisRequest, 'text'>): TtsStream {
    const voice = this.capabilities.voices.find((x) => x.id === req.voice.toLowerCase()) ?? this.capabilities.voices[0]!;
    this.streams++;
    return new ElevenLabsTtsStream({
      instanceId: this.id,
      s: this.s,
      voice,
      upstreamVoiceId: this.upstreamIds.get(voice.id) ?? voice.id,
      speed: req.speed,
      key: () => {
        if (this.key === undefined) throw new Error(`engine ${this.id} used before init()`);
        return this.key;
      },
      redact: () => this.redact,
      onEnd: () => this.streams--,
    });
  }

  stats(): TtsEngineStats {
    const st = this.inner.stats();
    return { ...st, activeJobs: st.activeJobs + this.streams };
  }

  async shutdown(): Promise<void> {
    await this.inner.shutdown();
  }
}

/**
 * Registry factory of type `elevenlabs` (TTS).
 * @throws Error `engines.<id> (type elevenlabs) is invalid: …` for bad or unknown settings.
 */
export function createElevenLabsTtsEngine(cfg: VoxgateConfig, instanceId: string): ElevenLabsTtsEngine {
  return new ElevenLabsTtsEngine(instanceId, parseInstanceSettings(elevenLabsTtsSettingsSchema, cfg, instanceId, PROVIDER));
}
