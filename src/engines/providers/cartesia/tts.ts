/**
 * Engine type `cartesia` (TTS): Cartesia Sonic over its TTS WebSocket (issue 11; shared/spec/
 * upstreams.md §1.6 [CA1], contexts [CA1 "contexts" guide], flushing [CA5], limits [CA2]). Hosts,
 * auth, version and plan limits: ./settings.ts.
 *
 * ## Wire (`wss://api.cartesia.ai/tts/websocket`, `Authorization: Bearer`, `Cartesia-Version`)
 * → generation request per input: `{model_id, transcript, voice:{mode:"id",id}, language, context_id,
 *   output_format:{container:"raw", encoding:"pcm_s16le", sample_rate}, continue, [generation_config:{speed}],
 *   [max_buffer_delay_ms]}`; continuations repeat every field but `transcript`/`continue` on the same
 *   `context_id`; `{"context_id", "cancel":true}` cancels a context.
 * ← `chunk{data:<base64 pcm_s16le>, context_id}`, `done{context_id}`, `flush_done{flush_id}` (not used:
 *   voxgate never sends `flush:true`, see below), `timestamps`/`phoneme_timestamps` (ignored),
 *   `error{title, message, error_code, status_code, done:true, context_id}`.
 *
 * ## Native streaming ({@link CartesiaTtsEngine.openStream}, the `TtsStream` of src/engines/tts/types.ts)
 * One WebSocket per voxgate session, dialled when the stream opens (Cartesia: "set up the WebSocket
 * before the first generation") after a slot of the account limiter was granted. Text streams in as
 * it arrives: one Cartesia **context per utterance** (= one voxgate segment):
 * - `pushText` → the first input opens a context (`continue:true`), later inputs continue it verbatim;
 * - `flush` → `{transcript:"", continue:false}` ends the context ("if you do not know the last
 *   transcript in advance, send an empty transcript with continue false", contexts guide); its
 *   `done` → `segment_end` + `flushed`. A context is ended rather than flushed (`flush:true` →
 *   `flush_done`, [CA5]) because Cartesia expires a context 1 s after its last audio: the next
 *   utterance, seconds later, could not continue it. Each new turn is a new context, as Cartesia
 *   recommends for agents.
 * - `clear` / `cancel` (barge-in) → `{context_id, cancel:true}`; late frames of that context are
 *   dropped by `context_id` (exact), the socket stays open for the next utterance.
 * - Only one context is on the wire at a time (text of the next utterance waits locally until the
 *   previous one is `done`), so a session never uses more than one Cartesia concurrency slot.
 * - Text arriving after the open context went quiet for `contextIdleMs` (its audio finished, the LLM
 *   paused) rolls over to a new context instead of risking the expired one; the old one is ended quietly.
 * - A context refused with 429 before any audio (Cartesia may still count a just-cancelled context) is
 *   re-sent once on a new id after 250 ms; its text is buffered meanwhile.
 * - A context's `error` frame → `segment_error` (`provider_error`, the session goes on); a socket lost
 *   mid-context likewise, and the next utterance re-dials; a failed (re)dial or a refused slot fails
 *   the stream (handshake errors as in src/engines/stt/upstream/common.ts: 401/403 →
 *   non-retryable `backend_connection_failed`, 429 → `rate_limit`, 5xx/network → retryable).
 * - Flow control: above 1 MiB of undelivered audio the socket is paused until half is consumed.
 *
 * ## Per-segment synthesis ({@link CartesiaTtsEngine.synthesize}, failover across several backends)
 * One context per segment (`continue:false`) on a pooled socket (src/engines/tts/upstream/ws_engine.ts),
 * `done` ends it; each segment holds an account slot while it runs (Cartesia counts active contexts).
 *
 * Audio: raw `pcm_s16le` at the voice's rate (instance `sampleRate`, else the voice's, else 24 kHz).
 * Speed: sonic-3 `generation_config.speed` 0.6–2.0 (sent only when ≠ 1).
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { VoxgateError } from '../../../util/errors.js';
import type { ConcurrencyLimiter, Release } from '../../limits.js';
import { connectUpstream } from '../../stt/upstream/common.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsStream, TtsStreamEvent, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../../tts/types.js';
import {
  commonSettingsShape,
  parseInstanceSettings,
  PcmAssembler,
  readApiKey,
  redactorFor,
  segmentError,
  toTtsVoices,
  upstreamCapabilities,
  upstreamVoiceSchema,
  type Redactor,
  type UpstreamEvent,
  type UpstreamWire,
} from '../../tts/upstream/common.js';
import { WsUpstreamTtsEngine } from '../../tts/upstream/ws_engine.js';
import { cartesiaCommonShape, cartesiaHeaders, cartesiaLimiter, cartesiaUrl, CARTESIA_DEFAULT_URL } from './settings.js';

/** sonic-3 `generation_config.speed` range ([CA1]; LiveKit's plugin checks the same bounds). */
export const CARTESIA_SPEED = { min: 0.6, max: 2.0 } as const;
/** Pause before a context refused with 429 is re-sent on a new id, ms. */
const RETRY_429_MS = 250;
/** Undelivered audio above which the socket is paused, bytes. */
const PAUSE_BYTES = 1 << 20;

/** One voice of `engines.<id>.voices[]`: the Cartesia voice UUID plus an optional voxgate `alias`. */
const cartesiaVoiceSchema = z
  .object({
    ...upstreamVoiceSchema.shape,
    /** The id clients use (lower case); default the Cartesia id. */
    alias: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'alias: lower-case letters, digits, ".", "_", "-"').optional(),
  })
  .strict();
/** A configured Cartesia voice. */
export type CartesiaVoiceSetting = z.infer<typeof cartesiaVoiceSchema>;

/** Offered when the instance lists no voices: the voice of Cartesia's realtime TTS quickstart. */
export const DEFAULT_CARTESIA_VOICES: CartesiaVoiceSetting[] = [
  { id: 'f786b574-daa5-4673-aa0c-cbe3e8534c02', alias: 'cartesia-quickstart', name: 'Cartesia quickstart voice (sonic-3)', languages: ['en'], gender: 'unknown' },
];

/** zod schema of a `cartesia` TTS instance (unknown keys rejected). */
export const cartesiaTtsSettingsSchema = z
  .object({
    ...commonSettingsShape,
    ...cartesiaCommonShape,
    url: commonSettingsShape.url.default(CARTESIA_DEFAULT_URL),
    /** Sonic model id. */
    model: z.string().min(1).default('sonic-3'),
    voices: z.array(cartesiaVoiceSchema).min(1).default(DEFAULT_CARTESIA_VOICES),
    /** Cartesia's `max_buffer_delay_ms` for streamed inputs (absent: Cartesia's default). */
    maxBufferDelayMs: z.number().int().min(0).max(5000).optional(),
    /** Offer the native streaming session (`openStream`); false = per-segment synthesis only. */
    streaming: z.boolean().default(true),
    /** An open context quiet this long after audio is not continued (Cartesia expires it 1 s after its last audio), ms. */
    contextIdleMs: z.number().int().positive().max(1000).default(700),
  })
  .strict();
/** Validated `cartesia` TTS settings. */
export type CartesiaTtsSettings = z.infer<typeof cartesiaTtsSettingsSchema>;

/** The fixed part of every generation request of one (voice, speed). */
export interface GenerationParams {
  model: string;
  voiceId: string;
  language: string;
  sampleRate: number;
  speed: number;
  maxBufferDelayMs?: number;
}

/**
 * One generation request frame ([CA1]).
 * @param cont `continue`: more inputs follow on this context.
 */
export function generationRequest(g: GenerationParams, contextId: string, transcript: string, cont: boolean): string {
  return JSON.stringify({
    model_id: g.model,
    transcript,
    voice: { mode: 'id', id: g.voiceId },
    language: g.language,
    context_id: contextId,
    output_format: { container: 'raw', encoding: 'pcm_s16le', sample_rate: g.sampleRate },
    continue: cont,
    ...(g.speed !== 1 ? { generation_config: { speed: g.speed } } : {}),
    ...(g.maxBufferDelayMs !== undefined ? { max_buffer_delay_ms: g.maxBufferDelayMs } : {}),
  });
}

/** A server message of the TTS WebSocket, classified. */
export type CartesiaTtsMessage =
  | { kind: 'chunk'; contextId?: string; data: Buffer }
  | { kind: 'done'; contextId?: string }
  | { kind: 'flush_done'; contextId?: string; flushId?: number }
  | { kind: 'error'; contextId?: string; status?: number; code?: string; message: string }
  | { kind: 'ignore' };

/** Classify one parsed server message ([CA1] shapes). Never throws. */
export function classifyCartesiaTts(m: Record<string, unknown>): CartesiaTtsMessage {
  const contextId = typeof m.context_id === 'string' ? m.context_id : undefined;
  switch (m.type) {
    case 'chunk':
      return typeof m.data === 'string' ? { kind: 'chunk', contextId, data: Buffer.from(m.data, 'base64') } : { kind: 'ignore' };
    case 'done':
      return { kind: 'done', contextId };
    case 'flush_done':
      return { kind: 'flush_done', contextId, ...(typeof m.flush_id === 'number' ? { flushId: m.flush_id } : {}) };
    case 'error': {
      const parts = [m.title, m.message ?? m.error].filter((x): x is string => typeof x === 'string' && x.length > 0);
      return {
        kind: 'error',
        contextId,
        ...(typeof m.status_code === 'number' ? { status: m.status_code } : {}),
        ...(typeof m.error_code === 'string' ? { code: m.error_code } : {}),
        message: parts.join(': ') || 'upstream error',
      };
    }
    default:
      return { kind: 'ignore' }; // timestamps, phoneme_timestamps, future types
  }
}

/** The error of a context's `error` frame: retryable `provider_error` naming Cartesia's status and code (key redacted). */
export function contextError(instanceId: string, ev: Extract<CartesiaTtsMessage, { kind: 'error' }>, redact: Redactor): VoxgateError {
  const tag = [ev.status, ev.code].filter((x) => x !== undefined).join(' ');
  return segmentError(instanceId, `Cartesia error${tag ? ` (${tag})` : ''}: ${redact(ev.message).slice(0, 200)}`);
}

/**
 * The per-segment wire ({@link WsUpstreamTtsEngine}): each segment is a fresh context with
 * `continue:false`; `done` of that context acknowledges it; frames of other contexts are ignored.
 */
export function cartesiaSegmentWire(g: GenerationParams): UpstreamWire {
  let current = '';
  return {
    openFrames: [],
    waitReady: false,
    classify(m): UpstreamEvent {
      const ev = classifyCartesiaTts(m);
      if (ev.kind === 'ignore' || (ev.contextId !== undefined && ev.contextId !== current)) return { kind: 'ignore' };
      switch (ev.kind) {
        case 'chunk':
          return { kind: 'audio', data: ev.data };
        case 'done':
          return { kind: 'flushed' };
        case 'error':
          return { kind: 'error', code: [ev.status, ev.code].filter((x) => x !== undefined).join(' ') || undefined, message: ev.message };
        default:
          return { kind: 'ignore' };
      }
    },
    segmentFrames(text) {
      current = randomUUID();
      return [generationRequest(g, current, text, false)];
    },
  };
}

/** What a stream needs from its engine. */
interface StreamDeps {
  instanceId: string;
  url: string;
  headers: Record<string, string>;
  secrets: string[];
  redact: Redactor;
  limiter: ConcurrencyLimiter;
  queueWaitMs: number;
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  contextIdleMs: number;
  gen: GenerationParams;
  onOpen(s: CartesiaTtsStream): void;
  onClose(s: CartesiaTtsStream): void;
}

/** One Cartesia context (= one voxgate segment). */
interface Ctx {
  /** Cartesia `context_id` (changes once when a 429 is retried). */
  id: string;
  segmentId: string;
  gen: number;
  /** Text sent on this context so far. */
  text: string;
  /** `continue:false` sent. */
  ended: boolean;
  /** A client `flush` is answered by this context's end (`flushed`). */
  flush: boolean;
  /** Ended by a rollover: an error or a silence at its end is not reported. */
  quiet: boolean;
  gotAudio: boolean;
  /** `performance.now()` of the last frame of this context (or of its opening), ms. */
  lastFrameAt: number;
  pcm: PcmAssembler;
  timer: NodeJS.Timeout | null;
  /** Re-sent once on a new context id after Cartesia's 429 (text buffered meanwhile). */
  retried: boolean;
  retryPending: boolean;
  retryTimer: NodeJS.Timeout | null;
}

/** Text waiting for the previous context to finish (one entry per utterance). */
interface Utterance {
  text: string;
  flushed: boolean;
}

/** The native streaming session (see the module docs). */
export class CartesiaTtsStream implements TtsStream {
  readonly sampleRate: number;
  private gen = 0;
  private closed = false;
  private ws: WebSocket | null = null;
  private connecting: Promise<WebSocket> | null = null;
  private release: Release | null = null;
  private readonly abort = new AbortController();
  private cur: Ctx | null = null;
  private readonly waiting: Utterance[] = [];
  private readonly events: TtsStreamEvent[] = [];
  private queuedBytes = 0;
  private paused = false;
  private failure: Error | null = null;
  private wakeFn: (() => void) | null = null;
  private segCount = 0;

  /** @param sampleRate Hz of the voice (= the `output_format.sample_rate` asked). */
  constructor(
    private readonly d: StreamDeps,
    sampleRate: number,
  ) {
    this.sampleRate = sampleRate;
    d.onOpen(this);
    // Dial now (after a slot is granted): the first text then finds the socket open.
    this.ensureSocket().catch((err: unknown) => this.fail(err));
  }

  get generation(): number {
    return this.gen;
  }

  get pendingChars(): number {
    return this.waiting.reduce((n, u) => n + u.text.length, 0) + (this.cur && !this.cur.gotAudio ? this.cur.text.length : 0);
  }

  get busy(): boolean {
    if (this.events.length > 0 || this.waiting.length > 0) return true;
    const c = this.cur;
    return c !== null && (c.ended || performance.now() - c.lastFrameAt < 1000);
  }

  /** True while the upstream socket is open (tests, status). */
  get connected(): boolean {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  pushText(text: string): void {
    if (this.closed || !text) return;
    const c = this.cur;
    if (c && !c.ended) {
      if (!this.idle(c)) {
        c.text += text;
        if (!c.retryPending) this.send(generationRequest(this.d.gen, c.id, text, true));
        return;
      }
      this.endQuietly(c); // the context may have expired: the text opens a new one
    }
    const tail = this.waiting.at(-1);
    if (tail && !tail.flushed) tail.text += text;
    else this.waiting.push({ text, flushed: false });
    this.pump();
  }

  flush(): void {
    if (this.closed) return;
    const c = this.cur;
    if (c && !c.ended) {
      c.flush = true;
      if (this.idle(c)) this.endQuietly(c);
      else {
        c.ended = true;
        if (!c.retryPending) {
          this.send(generationRequest(this.d.gen, c.id, '', false));
          this.armStall(c);
        }
      }
      return;
    }
    const tail = this.waiting.at(-1);
    if (tail && !tail.flushed) tail.flushed = true;
    else this.waiting.push({ text: '', flushed: true });
    this.pump();
  }

  clear(): void {
    this.gen++;
    const c = this.cur;
    if (c) {
      this.cur = null;
      if (c.timer) clearTimeout(c.timer);
      if (c.retryTimer) clearTimeout(c.retryTimer);
      this.send(JSON.stringify({ context_id: c.id, cancel: true }));
    }
    this.waiting.length = 0;
    this.events.length = 0;
    this.queuedBytes = 0;
    this.resume();
    if (!this.closed) this.pump();
  }

  close(): void {
    if (this.closed) return;
    this.clear();
    this.closed = true;
    this.abort.abort();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.removeAllListeners('message');
      try {
        ws.close(1000, 'session closed');
      } catch {
        ws.terminate();
      }
      setTimeout(() => ws.terminate(), 1000).unref();
    }
    this.release?.();
    this.release = null;
    this.d.onClose(this);
    this.wake();
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
      if (this.failure) throw this.failure;
      if (this.closed) return;
      await new Promise<void>((r) => (this.wakeFn = r));
    }
  }

  // ---- internals ----

  /** True when `c` produced audio and has been silent for `contextIdleMs` (Cartesia may have expired it). */
  private idle(c: Ctx): boolean {
    return c.gotAudio && performance.now() - c.lastFrameAt >= this.d.contextIdleMs;
  }

  /** End `c` without reporting an error or silence at its end (rollover). */
  private endQuietly(c: Ctx): void {
    c.ended = true;
    c.quiet = true;
    this.send(generationRequest(this.d.gen, c.id, '', false));
    this.armStall(c, Math.max(200, 1000 - this.d.contextIdleMs + 500));
  }

  private push(ev: TtsStreamEvent): void {
    this.events.push(ev);
    if (ev.kind === 'audio') {
      this.queuedBytes += ev.pcm.byteLength;
      if (!this.paused && this.queuedBytes > PAUSE_BYTES && this.ws) {
        this.paused = true;
        this.ws.pause();
      }
    }
    this.wake();
  }

  private wake(): void {
    const w = this.wakeFn;
    this.wakeFn = null;
    w?.();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.ws?.resume();
  }

  private fail(err: unknown): void {
    if (this.closed || this.failure) return;
    this.failure = err instanceof Error ? err : new VoxgateError('provider_error', String(err));
    this.wake();
  }

  private send(frame: string): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(frame, (err) => {
      if (err) this.socketGone(ws, `send failed: ${this.d.redact(err.message)}`);
    });
  }

  /** Open the next waiting utterance as a context when none is on the wire (dialling first if needed). */
  private pump(): void {
    while (!this.cur && this.waiting.length > 0 && !this.closed && !this.failure) {
      const head = this.waiting[0]!;
      if (!head.text) {
        this.waiting.shift();
        if (head.flushed) this.push({ kind: 'flushed', gen: this.gen });
        continue;
      }
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        this.ensureSocket().then(
          () => this.pump(),
          (err: unknown) => this.fail(err),
        );
        return;
      }
      this.waiting.shift();
      const c: Ctx = {
        id: randomUUID(),
        segmentId: `seg_${String(++this.segCount).padStart(3, '0')}`,
        gen: this.gen,
        text: head.text,
        ended: head.flushed,
        flush: head.flushed,
        quiet: false,
        gotAudio: false,
        lastFrameAt: performance.now(),
        pcm: new PcmAssembler(),
        timer: null,
        retried: false,
        retryPending: false,
        retryTimer: null,
      };
      this.cur = c;
      this.push({ kind: 'segment_start', segmentId: c.segmentId, text: c.text, gen: c.gen });
      this.send(generationRequest(this.d.gen, c.id, c.text, !c.ended));
      if (c.ended) this.armStall(c);
    }
  }

  /** The open socket, dialling it (after the account limiter granted a slot) when there is none. */
  private ensureSocket(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.connecting ??= this.dial().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async dial(): Promise<WebSocket> {
    if (!this.release) {
      const r = await this.d.limiter.acquire(this.d.queueWaitMs, this.abort.signal);
      if (this.closed) {
        r();
        throw new VoxgateError('unavailable', 'stream closed');
      }
      this.release = r;
    }
    const ws = await connectUpstream({ url: this.d.url, headers: this.d.headers, timeoutMs: this.d.connectTimeoutMs, signal: this.abort.signal, secrets: this.d.secrets });
    if (this.closed) {
      ws.terminate();
      throw new VoxgateError('unavailable', 'stream closed');
    }
    this.ws = ws;
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.socketGone(ws, `connection closed (${code}${reason.length ? ` ${this.d.redact(reason.toString()).slice(0, 120)}` : ''})`));
    ws.on('error', (err) => this.socketGone(ws, `socket error: ${this.d.redact(err.message)}`));
    return ws;
  }

  /** The socket ended: a context on it fails (`segment_error`); the next utterance re-dials. */
  private socketGone(ws: WebSocket, why: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.paused = false;
    ws.terminate();
    const c = this.cur;
    if (c) this.finish(c, c.quiet ? null : segmentError(this.d.instanceId, `${why} before the end of the segment`));
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary || this.closed) return;
    let m: unknown;
    try {
      m = JSON.parse(data.toString());
    } catch {
      return; // not JSON: nothing Cartesia documents; ignored
    }
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return;
    const ev = classifyCartesiaTts(m as Record<string, unknown>);
    const c = this.cur;
    if (!c || ev.kind === 'ignore') return;
    // Frames of cancelled or rolled-over contexts are dropped by id; an error without one concerns the open context.
    if (ev.contextId !== undefined ? ev.contextId !== c.id : ev.kind !== 'error') return;
    c.lastFrameAt = performance.now();
    switch (ev.kind) {
      case 'chunk': {
        const pcm = c.pcm.push(ev.data);
        if (pcm.length > 0) {
          c.gotAudio = true;
          this.push({ kind: 'audio', pcm, gen: c.gen });
        }
        if (c.ended) this.armStall(c);
        return;
      }
      case 'done':
        this.finish(c, null);
        return;
      case 'error':
        if (ev.status === 429 && !c.gotAudio && !c.retried && !c.quiet) return this.retryContext(c);
        this.finish(c, c.quiet ? null : contextError(this.d.instanceId, ev, this.d.redact));
        return;
      case 'flush_done':
        return; // voxgate never asks flush:true (see the module docs)
    }
  }

  /**
   * Cartesia refused a new context with 429 (its count of active contexts may still include the one
   * just cancelled by a barge-in): re-send the context's text once, on a new id, after a short pause —
   * the session holds an account slot, so this is transient, never a rejection the client should see.
   */
  private retryContext(c: Ctx): void {
    c.retried = true;
    c.retryPending = true;
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    c.retryTimer = setTimeout(() => {
      c.retryTimer = null;
      if (this.cur !== c) return;
      c.retryPending = false;
      c.id = randomUUID();
      c.lastFrameAt = performance.now();
      this.send(generationRequest(this.d.gen, c.id, c.text, !c.ended));
      if (c.ended) this.armStall(c);
    }, RETRY_429_MS);
  }

  /** `c` is over: `segment_error` (when failed), `segment_end`, `flushed` (when a flush ended it); next utterance. */
  private finish(c: Ctx, err: VoxgateError | null): void {
    if (this.cur !== c) return;
    this.cur = null;
    if (c.timer) clearTimeout(c.timer);
    if (c.retryTimer) clearTimeout(c.retryTimer);
    if (err) this.push({ kind: 'segment_error', segmentId: c.segmentId, error: err, gen: c.gen });
    this.push({ kind: 'segment_end', segmentId: c.segmentId, gen: c.gen });
    if (c.flush) this.push({ kind: 'flushed', gen: c.gen });
    this.pump();
  }

  /** An ended context must answer (a frame) within `ms` (default `stallTimeoutMs`); not while paused by flow control. */
  private armStall(c: Ctx, ms = this.d.stallTimeoutMs): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => {
      c.timer = null;
      if (this.cur !== c) return;
      if (this.paused) return this.armStall(c, ms);
      if (c.quiet) return this.finish(c, null);
      // The socket's state is unknown after a stall: drop it (the next utterance re-dials).
      const ws = this.ws;
      this.finish(c, segmentError(this.d.instanceId, `no audio or message from Cartesia for ${ms} ms`));
      if (ws) {
        this.ws = null;
        ws.terminate();
      }
    }, ms);
  }
}

/** The `cartesia` TTS engine (see the module docs). */
export class CartesiaTtsEngine implements TtsEngine {
  readonly id: string;
  readonly version: string;
  readonly capabilities: TtsCapabilities;
  /** The native streaming session; absent when `streaming: false`. */
  readonly openStream?: (req: Omit<TtsSynthesisRequest, 'text'>) => TtsStream;
  private readonly inner: WsUpstreamTtsEngine;
  private readonly limiter: ConcurrencyLimiter;
  private readonly upstreamIds: Map<string, string>;
  private readonly streams = new Set<CartesiaTtsStream>();
  private key: string | undefined;
  private redact: Redactor = (t) => t;
  private ready = false;

  constructor(
    readonly instanceId: string,
    private readonly s: CartesiaTtsSettings,
  ) {
    this.id = instanceId;
    this.version = s.model;
    const voices = toTtsVoices(
      instanceId,
      s.voices.map(({ alias, ...v }) => ({ ...v, id: alias ?? v.id })),
      s.sampleRate,
      24000,
    );
    this.upstreamIds = new Map(s.voices.map((v) => [(v.alias ?? v.id).toLowerCase(), v.id]));
    this.capabilities = upstreamCapabilities(voices, { ...CARTESIA_SPEED });
    this.limiter = cartesiaLimiter('tts', s.apiKeyEnv, s);
    this.inner = new WsUpstreamTtsEngine({
      instanceId,
      version: s.model,
      capabilities: this.capabilities,
      connectTimeoutMs: s.connectTimeoutMs,
      stallTimeoutMs: s.stallTimeoutMs,
      idleConnectionMs: s.idleConnectionMs,
      init: () => {},
      endpoint: (voice, speed) => ({ url: this.url(), headers: cartesiaHeaders(this.key, s.apiVersion), wire: cartesiaSegmentWire(this.params(voice, speed)) }),
      redact: () => this.redact,
    });
    if (s.streaming) this.openStream = (req) => this.stream(req);
  }

  /** Upstream sockets of native streams plus pooled per-segment sockets (tests, status). */
  get openConnections(): number {
    return this.inner.openConnections + [...this.streams].filter((x) => x.connected).length;
  }

  /** The account limiter this instance counts against. */
  get accountLimiter(): ConcurrencyLimiter {
    return this.limiter;
  }

  /** @throws Error naming the instance and the variable when `apiKeyEnv` is set but the variable is not. */
  async init(): Promise<void> {
    this.key = readApiKey(this.instanceId, this.s.apiKeyEnv);
    this.redact = redactorFor(this.key);
    await this.inner.init();
    this.ready = true;
  }

  private url(): string {
    return cartesiaUrl(this.s.url, '/tts/websocket').toString();
  }

  private voice(id: string): TtsVoice | undefined {
    const v = id.toLowerCase();
    return this.capabilities.voices.find((x) => x.id === v);
  }

  private params(voice: TtsVoice, speed: number): GenerationParams {
    return {
      model: this.s.model,
      voiceId: this.upstreamIds.get(voice.id) ?? voice.id,
      language: voice.languages[0]!.split('-')[0]!,
      sampleRate: voice.sampleRate,
      speed,
      ...(this.s.maxBufferDelayMs !== undefined ? { maxBufferDelayMs: this.s.maxBufferDelayMs } : {}),
    };
  }

  /**
   * Speak one segment on its own context, holding an account slot while it runs. Iteration throws
   * `rate_limit` (retryable) when no slot freed within `queueWaitMs`, else as {@link WsUpstreamTtsEngine.synthesize}.
   */
  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const voice = this.voice(req.voice);
    const sampleRate = voice?.sampleRate ?? this.capabilities.voices[0]!.sampleRate;
    const self = this;
    async function* run(): AsyncGenerator<Int16Array> {
      const release = await self.limiter.acquire(self.s.queueWaitMs, signal);
      try {
        yield* self.inner.synthesize(req, signal);
      } finally {
        release();
      }
    }
    const it = run();
    return { sampleRate, [Symbol.asyncIterator]: () => it };
  }

  /**
   * A native streaming session for one voice (already validated; an unknown id falls back to the
   * first voice) and speed (see the module docs). A refused slot or a failed dial surface when iterating.
   * @throws VoxgateError `internal_error` when called before `init()`.
   */
  private stream(req: Omit<TtsSynthesisRequest, 'text'>): TtsStream {
    if (!this.ready) throw new VoxgateError('internal_error', `engine ${this.id} used before init()`);
    const voice = this.voice(req.voice) ?? this.capabilities.voices[0]!;
    return new CartesiaTtsStream(
      {
        instanceId: this.instanceId,
        url: this.url(),
        headers: cartesiaHeaders(this.key, this.s.apiVersion),
        secrets: this.key ? [this.key] : [],
        redact: this.redact,
        limiter: this.limiter,
        queueWaitMs: this.s.queueWaitMs,
        connectTimeoutMs: this.s.connectTimeoutMs,
        stallTimeoutMs: this.s.stallTimeoutMs,
        contextIdleMs: this.s.contextIdleMs,
        gen: this.params(voice, req.speed),
        onOpen: (x) => this.streams.add(x),
        onClose: (x) => this.streams.delete(x),
      },
      voice.sampleRate,
    );
  }

  /** Warm a pooled socket for per-segment synthesis; a no-op when native streams are on (they dial themselves). */
  prepare(req: Omit<TtsSynthesisRequest, 'text'>): void {
    if (!this.s.streaming) this.inner.prepare(req);
  }

  stats(): TtsEngineStats {
    const inner = this.inner.stats();
    return { activeJobs: inner.activeJobs + this.streams.size, queuedJobs: this.limiter.waiting, finishedJobs: inner.finishedJobs };
  }

  async shutdown(): Promise<void> {
    for (const st of [...this.streams]) st.close();
    await this.inner.shutdown();
  }
}

/**
 * Registry factory of TTS type `cartesia`.
 * @throws Error `engines.<id> (type cartesia) is invalid: …` for bad or unknown settings.
 */
export function createCartesiaTtsEngine(cfg: VoxgateConfig, instanceId: string): CartesiaTtsEngine {
  return new CartesiaTtsEngine(instanceId, parseInstanceSettings(cartesiaTtsSettingsSchema, cfg, instanceId, 'cartesia'));
}
