/**
 * Engine type `cartesia` (STT): Cartesia Ink over its realtime STT WebSockets (issue 11;
 * shared/spec/upstreams.md §1.7 [CA3]: API reference `stt/websocket` and `stt/turns/websocket`, the
 * Deepgram Nova/Flux migration guides, "common pitfalls"; LiveKit agents-js `plugins/cartesia/src/stt.ts`
 * for the turn events). Hosts, auth (`Authorization: Bearer`, `Cartesia-Version`), plans: ./settings.ts.
 *
 * Two endpoints, picked per stream by `endpoint` (default `auto`):
 *
 * ## Manual finalize — `/stt/websocket?model&encoding&sample_rate&language` (`manual`; `auto` when the
 * stream has no endpointing)
 * - Audio: binary frames (`pcm_s16le` 16 kHz, or the client's raw `linear16`/`mulaw`/`alaw` passed through).
 * - `finalize()` → the plain-text frame `finalize` (not JSON); Cartesia answers with the `is_final`
 *   transcripts of the buffered audio, then `flush_done`. Transcripts are **deltas**: the `is_final`
 *   deltas between a `finalize` and its `flush_done` are joined verbatim (no trimming, as Cartesia's
 *   pitfalls page requires) into exactly one final with `fromFinalize: true` — an empty one when there
 *   was no speech; an `is_final` delta with no finalize outstanding is a final of its own.
 *   `is_final: false` deltas → partials (when the stream asked for partials). `speech_final` is always false (this endpoint has no endpointing).
 * - `close()` → the plain-text frame `close`; Cartesia flushes, sends `done` and closes.
 * - Words: `words[{word,start,end}]`, seconds. By default (`wordTimes: "stream"`) taken as times from
 *   the stream start, as Deepgram's (the migration guide maps the fields 1:1) **[unconfirmed]**;
 *   `wordTimes: "segment"` adds the audio position where the segment began (the previous answered
 *   `finalize`; times relative to the finalized segment). Result `start`/`duration` span the words; without words a final spans from
 *   the previous final's end to the audio sent so far. Confidence: Cartesia sends none (0).
 *
 * ## Model-driven turns — `/stt/turns/websocket?model&encoding&sample_rate` (`turns`; `auto` when the
 * stream asks for endpointing and the language is English, the only one this endpoint serves)
 * - `turn.start` → `speech_started` (timestamp = audio sent so far); `turn.update`/`turn.eager_end`
 *   (cumulative text) → partials; `turn.resume` ignored; `turn.end` → final with `speech_final: true`.
 *   Times are the audio clock when the events arrive (the endpoint sends no word times; finals carry `words: []`).
 * - `close()` → JSON `{"type":"close"}`.
 * - `finalize()`: the endpoint has none. The gateway commits the turn's text so far as the one
 *   `fromFinalize` final at once (never a silent no-op) and later events of that turn only carry the
 *   text after it.
 *
 * Keepalive: Cartesia documents no keepalive message; WebSocket pings while the backend is quiet
 * (the base's watchdog) keep the socket alive. Errors `{title,message,error_code,status_code}` →
 * 401/403 `backend_connection_failed` (not retryable), 429 `rate_limit`, 400 `config_error`, others a
 * retryable `provider_error`. Concurrency: the account limiter (settings `plan`/`maxConcurrent`,
 * `queueWaitMs`) is taken before dialling and released when the stream ends; BYOK streams skip it.
 */
import type WebSocket from 'ws';
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import type { RequestContext } from '../../context.js';
import type { ConcurrencyLimiter } from '../../limits.js';
import {
  parseTypedFrame,
  parseUpstreamSettings,
  upstreamFormat,
  upstreamFrameError,
  upstreamSettingsShape,
  UpstreamSttEngine,
  UpstreamSttStream,
  type RelayOptions,
  type UpstreamRequest,
} from '../../stt/upstream/common.js';
import type { SttStream, SttStreamConfig, SttWord } from '../../stt/types.js';
import { cartesiaCommonShape, cartesiaLimiter, cartesiaUrl, CARTESIA_DEFAULT_URL } from './settings.js';

/** voxgate encoding → Cartesia `encoding` (raw formats Cartesia takes; no containers, no opus [CA3]). */
export const CARTESIA_ENCODINGS: Readonly<Record<string, string>> = { linear16: 'pcm_s16le', mulaw: 'pcm_mulaw', alaw: 'pcm_alaw' };

/** Settings of a `cartesia` STT instance (`engines.<id>`), strict. */
export const cartesiaSttSettingsSchema = z
  .object({
    ...upstreamSettingsShape,
    ...cartesiaCommonShape,
    url: upstreamSettingsShape.url.default(CARTESIA_DEFAULT_URL),
    /** `ink-2` (English) or `ink-whisper` (multilingual, manual endpoint only). */
    model: z.string().min(1).default('ink-2'),
    /** `manual` (`/stt/websocket`), `turns` (`/stt/turns/websocket`), or `auto` (turns when the stream asks for endpointing in English). */
    endpoint: z.enum(['auto', 'manual', 'turns']).default('auto'),
    /** How `words[].start/end` of the manual endpoint count: from the stream start, or from the previous finalize. */
    wordTimes: z.enum(['stream', 'segment']).default('stream'),
    /** Cartesia wants real-time cadence ("send audio in small chunks, e.g. 100 ms"): failover replays at 1×. */
    replayPace: z.number().positive().nullable().default(1),
    passthroughEncodings: z.array(z.enum(['linear16', 'mulaw', 'alaw'])).default(['linear16', 'mulaw', 'alaw']),
  })
  .strict();
/** Validated `cartesia` STT settings. */
export type CartesiaSttSettings = z.output<typeof cartesiaSttSettingsSchema>;

/** The endpoint a stream uses. */
export function cartesiaEndpoint(s: Pick<CartesiaSttSettings, 'endpoint'>, config: SttStreamConfig): 'manual' | 'turns' {
  if (s.endpoint !== 'auto') return s.endpoint;
  return config.vad && config.endpointingMs !== null && config.language === 'en' ? 'turns' : 'manual';
}

const num = z.number().finite();
const transcriptFrame = z
  .object({
    type: z.literal('transcript'),
    is_final: z.boolean().optional(),
    text: z.string().default(''),
    duration: num.optional(),
    language: z.string().optional(),
    words: z.array(z.object({ word: z.string(), start: num, end: num }).loose()).optional(),
  })
  .loose();
const turnFrame = z.object({ type: z.string(), transcript: z.string().optional() }).loose();
const errorFrame = z
  .object({ type: z.literal('error'), title: z.string().optional(), message: z.string().optional(), error: z.string().optional(), error_code: z.string().optional(), status_code: z.number().optional() })
  .loose();

/** The catalogue error of a Cartesia `error` frame (module docs), key redacted. */
export function cartesiaSttError(json: unknown, secrets: readonly string[]): ReturnType<typeof upstreamFrameError> {
  const e = errorFrame.parse(json);
  const status = e.status_code;
  const code = status === 401 || status === 403 ? 'auth_error' : status === 429 ? 'rate_limit' : status === 400 ? 'config_error' : 'provider_error';
  const text = [e.title, e.message ?? e.error].filter(Boolean).join(': ');
  return upstreamFrameError(code, `Cartesia ${[status, e.error_code].filter((x) => x !== undefined).join(' ')}: ${text || 'error'}`.trim(), secrets);
}

/** Accumulated `is_final` deltas of one finalize. */
interface Merge {
  text: string;
  words: SttWord[];
  start: number | null;
  end: number | null;
  language: string | null;
}

/** A relayed Ink stream (both endpoints; see the module docs). */
export class CartesiaSttStream extends UpstreamSttStream {
  /** Finalizes sent and not yet answered by `flush_done` (manual endpoint). */
  private finalizesOut = 0;
  private merge: Merge | null = null;
  /** Audio position (s) where the segment being transcribed began: the base of segment-relative word times. */
  private segmentBase = 0;
  /** Audio position (s) of each finalize not yet answered: where the next segment begins. */
  private readonly segmentEnds: number[] = [];
  /** Turns: start (s) of the turn in progress, or null; text of it already committed by a finalize. */
  private turnStart: number | null = null;
  private committed = '';
  private turnText = '';
  private slot: (() => void) | null = null;
  private ended = false;

  constructor(
    ws: WebSocket,
    config: SttStreamConfig,
    o: RelayOptions,
    private readonly mode: 'manual' | 'turns',
    private readonly wordTimes: 'stream' | 'segment',
  ) {
    super(ws, config, {
      ...o,
      onEnd: () => {
        this.ended = true;
        this.slot?.();
        this.slot = null;
        o.onEnd();
      },
    });
  }

  /** Hold an account slot until the stream ends (released at once if it already has). */
  holdSlot(release: () => void): void {
    if (this.ended) release();
    else this.slot = release;
  }

  override finalize(): void {
    if (this.state !== 'open') return;
    if (this.mode === 'manual') {
      this.finalizesOut++;
      this.segmentEnds.push(this.audioSeconds);
      super.finalize();
      return;
    }
    // Turns: no finalize on the wire — commit the turn's text so far as the one fromFinalize final.
    const clock = this.audioSeconds;
    const text = this.uncommitted(this.turnText);
    const start = this.turnStart ?? this.lastFinalEnd;
    this.committed = this.turnText;
    if (this.turnStart !== null) this.turnStart = clock;
    this.lastFinalEnd = Math.max(this.lastFinalEnd, clock);
    this.safeEmit('final', {
      transcript: text.trim(),
      confidence: 0,
      ...(this.config.wordTimestamps ? { words: [] } : {}),
      start,
      duration: Math.max(0, clock - start),
      language: this.config.language,
      speechFinal: false,
      fromFinalize: true,
    });
  }

  protected onText(text: string): void {
    const { type, json } = parseTypedFrame(text);
    if (type === 'error') {
      this.fail(cartesiaSttError(json, this.o.secrets));
      return;
    }
    if (this.mode === 'manual') this.manual(type, json);
    else this.turns(type, json);
  }

  private manual(type: string, json: unknown): void {
    switch (type) {
      case 'transcript': {
        const t = transcriptFrame.parse(json);
        const base = this.wordTimes === 'segment' ? this.segmentBase : 0;
        const words: SttWord[] = (t.words ?? []).map((w) => ({ word: w.word.trim(), start: w.start + base, end: Math.max(w.end, w.start) + base, confidence: 0 }));
        const start = words[0]?.start ?? this.lastFinalEnd;
        const end = words.at(-1)?.end ?? Math.max(start, Math.min(this.audioSeconds, start + (t.duration ?? 0)));
        if (!t.is_final) {
          if (!t.text.trim() || !this.config.partials) return; // partials only when the stream asked for them
          this.safeEmit('partial', { transcript: ((this.merge?.text ?? '') + t.text).trim(), start: this.merge?.start ?? start, duration: Math.max(0, end - (this.merge?.start ?? start)), ...(this.config.wordTimestamps && words.length > 0 ? { words } : {}) });
          return;
        }
        if (this.finalizesOut > 0) {
          const m = (this.merge ??= { text: '', words: [], start: null, end: null, language: null });
          m.text += t.text;
          m.words.push(...words);
          if (t.text.trim() || words.length > 0) {
            m.start = m.start === null ? start : Math.min(m.start, start);
            m.end = m.end === null ? end : Math.max(m.end, end);
          }
          m.language ??= t.language ?? null;
          return;
        }
        if (!t.text.trim() && words.length === 0) return;
        this.emitFinal({ transcript: t.text.trim(), confidence: 0, ...(this.config.wordTimestamps ? { words } : {}), start, duration: Math.max(0, end - start), language: t.language ?? this.config.language, speechFinal: false }, false);
        return;
      }
      case 'flush_done': {
        if (this.finalizesOut > 0) this.finalizesOut--;
        this.emitMerged(true);
        this.segmentBase = this.segmentEnds.shift() ?? this.segmentBase;
        return;
      }
      case 'done':
        this.emitMerged(false); // close acknowledged: anything merged goes out; the socket closes next
        return;
      default:
        return; // future types
    }
  }

  /** Emit the deltas merged since the finalize (an empty final when none), as the finalize's answer. */
  private emitMerged(fromFinalize: boolean): void {
    const m = this.merge;
    this.merge = null;
    if (!m && !fromFinalize) return;
    const start = m?.start ?? this.lastFinalEnd;
    const end = m?.end ?? start;
    this.emitFinal(
      { transcript: (m?.text ?? '').trim(), confidence: 0, ...(this.config.wordTimestamps ? { words: m?.words ?? [] } : {}), start, duration: Math.max(0, end - start), language: m?.language ?? this.config.language, speechFinal: false },
      fromFinalize,
    );
  }

  /** The part of a cumulative turn transcript after the text a finalize already committed. */
  private uncommitted(cumulative: string): string {
    if (this.committed && cumulative.startsWith(this.committed)) return cumulative.slice(this.committed.length);
    return this.committed ? (cumulative.length > this.committed.length ? cumulative : '') : cumulative;
  }

  private turns(type: string, json: unknown): void {
    const clock = this.audioSeconds;
    switch (type) {
      case 'turn.start':
        this.turnStart = clock;
        this.committed = '';
        this.turnText = '';
        if (this.config.vad) this.safeEmit('speech_started', { timestamp: clock });
        return;
      case 'turn.update':
      case 'turn.eager_end': {
        const t = turnFrame.parse(json).transcript ?? '';
        this.turnText = t;
        this.turnStart ??= this.lastFinalEnd;
        const text = this.uncommitted(t).trim();
        if (text && this.config.partials) this.safeEmit('partial', { transcript: text, start: this.turnStart, duration: Math.max(0, clock - this.turnStart) });
        return;
      }
      case 'turn.end': {
        const t = turnFrame.parse(json).transcript ?? this.turnText;
        const start = this.turnStart ?? this.lastFinalEnd;
        const text = this.uncommitted(t).trim();
        this.turnStart = null;
        this.committed = '';
        this.turnText = '';
        if (!text) return; // everything was committed by a finalize already
        this.emitFinal({ transcript: text, confidence: 0, ...(this.config.wordTimestamps ? { words: [] } : {}), start, duration: Math.max(0, clock - start), language: this.config.language, speechFinal: true }, false);
        return;
      }
      default:
        return; // connected, turn.resume, future types
    }
  }
}

/** The `cartesia` STT engine (see the module docs). */
export class CartesiaSttEngine extends UpstreamSttEngine {
  private readonly limiter: ConcurrencyLimiter;

  constructor(
    id: string,
    private readonly s: CartesiaSttSettings,
  ) {
    super(id, s, {
      authScheme: 'Bearer',
      // `finalize`/`close` of the turns endpoint differ; the stream picks (see CartesiaSttStream).
      frames: { finalize: 'finalize', close: 'close', keepalive: null },
      createStream: (ws, config, o) => {
        const mode = cartesiaEndpoint(s, config);
        return new CartesiaSttStream(ws, config, mode === 'turns' ? { ...o, frames: { ...o.frames, close: '{"type":"close"}' } } : o, mode, s.wordTimes);
      },
    });
    this.limiter = cartesiaLimiter('stt', s.apiKeyEnv, s);
    // Turns: no word times. Manual: words, no VAD events. Both together: everything maps on one of them.
    this.capabilities.vadEvents = true;
    this.capabilities.endpointing = true;
  }

  /** The account limiter this instance counts against. */
  get accountLimiter(): ConcurrencyLimiter {
    return this.limiter;
  }

  protected request(config: SttStreamConfig): UpstreamRequest {
    const mode = cartesiaEndpoint(this.s, config);
    const u = cartesiaUrl(this.s.url, mode === 'turns' ? '/stt/turns/websocket' : '/stt/websocket');
    const q = u.searchParams;
    q.set('model', this.s.model);
    const fmt = upstreamFormat(config);
    q.set('encoding', CARTESIA_ENCODINGS[fmt.encoding] ?? 'pcm_s16le');
    q.set('sample_rate', String(fmt.sampleRate));
    if (mode === 'manual') q.set('language', config.language);
    return { url: u.toString(), headers: { 'Cartesia-Version': this.s.apiVersion } };
  }

  /**
   * Take an account slot (not for BYOK streams), then open the stream (common.ts).
   * @throws VoxgateError `rate_limit` (retryable) when no slot freed within `queueWaitMs`; else as the base.
   */
  override async start(config: SttStreamConfig, ctx?: RequestContext): Promise<SttStream> {
    const release = ctx?.providerKey ? null : await this.limiter.acquire(this.s.queueWaitMs, ctx?.signal);
    let stream: SttStream;
    try {
      stream = await super.start(config, ctx);
    } catch (err) {
      release?.();
      throw err;
    }
    if (release) (stream as CartesiaSttStream).holdSlot(release);
    return stream;
  }
}

/**
 * Registry factory of STT type `cartesia`.
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createCartesiaSttEngine(cfg: VoxgateConfig, instanceId: string): CartesiaSttEngine {
  return new CartesiaSttEngine(instanceId, parseUpstreamSettings(cartesiaSttSettingsSchema, cfg, instanceId, 'cartesia'));
}
