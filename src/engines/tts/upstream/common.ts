/**
 * Shared machinery of the upstream TTS engine types `slng` and `deepgram` (issue 10 part 2 "Two
 * upstream engine types"; shared/spec/upstreams.md §2.2 "Error mapping", protocols.md §1.5, §3).
 *
 * - typed settings common to both types (zod, unknown keys rejected naming the instance);
 * - the error mapping of a failed handshake (status / network error → {@link VoxgateError} with
 *   `retryable`, which drives failover in `../failover.ts`);
 * - {@link UpstreamConnection}: one WebSocket to an upstream, configured at connect time for one
 *   (voice, speed), that speaks segment after segment (text + flush → audio until the flush's
 *   acknowledgement);
 * - {@link ConnectionPool}: at most one idle ("warm") connection per (voice, speed), reused by the
 *   next segment while it is safe;
 * - {@link PcmAssembler}: little-endian bytes → `Int16Array` chunks across odd frame boundaries.
 *
 * Secrets: the API key is read from the environment variable named by `apiKeyEnv` at `init()`, sent
 * only in the upgrade/request `Authorization` header, and scrubbed from every upstream-provided text
 * that could end up in an error message ({@link Redactor}).
 */
import WebSocket from 'ws';
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { VoxgateError } from '../../../util/errors.js';
import { abortError } from '../process.js';
import type { TtsCapabilities, TtsVoice } from '../types.js';

// ---------------------------------------------------------------- settings

/** One upstream voice as written in `engines.<id>.voices[]`. */
export const upstreamVoiceSchema = z
  .object({
    /** The upstream's voice id (sent upstream verbatim; served lower-cased as the voxgate voice id). */
    id: z.string().min(1),
    name: z.string().min(1).optional(),
    /** Language tags, most specific first (e.g. `["en-us", "en"]`). */
    languages: z.array(z.string().min(1)).min(1),
    gender: z.enum(['male', 'female', 'unknown']).optional(),
    /** Hz the upstream produces for this voice; default the instance's `sampleRate`. */
    sampleRate: z.number().int().positive().optional(),
  })
  .strict();
/** A configured upstream voice. */
export type UpstreamVoiceSetting = z.infer<typeof upstreamVoiceSchema>;

const urlSchema = z.string().refine((s) => {
  try {
    return ['ws:', 'wss:', 'http:', 'https:'].includes(new URL(s).protocol);
  } catch {
    return false;
  }
}, 'must be an absolute ws://, wss://, http:// or https:// URL');

/**
 * Settings shared by both upstream types. `type` and `region` are the engine-instance keys common to
 * every type (config.ts `engineInstanceSchema`).
 */
export const commonSettingsShape = {
  type: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  /** Base URL of the upstream (scheme ws/wss/http/https; the other family is derived). */
  url: urlSchema,
  /** NAME of the environment variable holding the upstream API key (never the key itself). */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
    .optional(),
  /** Sample rate (Hz) requested from the upstream for every voice; default each voice's own. */
  sampleRate: z.number().int().positive().optional(),
  /** Connect (TCP + upgrade + `ready`) deadline, ms. */
  connectTimeoutMs: z.number().int().positive().default(5000),
  /** No frame from the upstream for this long while a segment waits for audio → retryable `provider_error`, ms. */
  stallTimeoutMs: z.number().int().positive().default(5000),
  /** An idle upstream connection is kept warm this long for the next segment of the same (voice, speed), ms; 0 = never reuse. */
  idleConnectionMs: z.number().int().min(0).default(10_000),
};

/**
 * Validate `cfg.engines[instanceId]` with a type's schema.
 * @throws Error `engines.<id> (type <t>) is invalid: …` naming every bad or unknown key.
 */
export function parseInstanceSettings<S extends z.ZodType>(schema: S, cfg: VoxgateConfig, instanceId: string, typeName: string): z.infer<S> {
  const r = schema.safeParse(cfg.engines[instanceId] ?? {});
  if (!r.success) throw new Error(`engines.${instanceId} (type ${typeName}) is invalid: ${z.prettifyError(r.error)}`);
  return r.data;
}

/**
 * The voices of an instance as {@link TtsVoice}s: ids lower case, `name` defaulting to the id,
 * `sampleRate` = the instance's `sampleRate` when set, else the voice's, else `fallbackRate`.
 * @throws Error naming the instance when a voice has no rate and there is no fallback, or ids repeat.
 */
export function toTtsVoices(instanceId: string, voices: UpstreamVoiceSetting[], instanceRate: number | undefined, fallbackRate?: number): TtsVoice[] {
  const seen = new Set<string>();
  return voices.map((v) => {
    const id = v.id.toLowerCase();
    if (seen.has(id)) throw new Error(`engines.${instanceId}: voice "${v.id}" is listed twice`);
    seen.add(id);
    const sampleRate = instanceRate ?? v.sampleRate ?? fallbackRate;
    if (sampleRate === undefined) throw new Error(`engines.${instanceId}: voice "${v.id}" needs a sampleRate (or set the instance's sampleRate)`);
    return { id, name: v.name ?? v.id, languages: v.languages.map((l) => l.toLowerCase()), gender: v.gender ?? 'unknown', sampleRate };
  });
}

/** Capabilities of an upstream instance (voices as data; always incremental: audio streams as it is produced). */
export function upstreamCapabilities(voices: TtsVoice[], speed: { min: number; max: number } | null): TtsCapabilities {
  const languages = [...new Set(voices.flatMap((v) => v.languages.map((l) => l.split('-')[0]!)))].sort();
  return { voices, languages, speed, incremental: true };
}

/**
 * Read the API key named by `apiKeyEnv`.
 * @returns the key, or `undefined` when no `apiKeyEnv` is configured (no `Authorization` header is sent).
 * @throws Error naming the instance and the variable (never a value) when the variable is unset or empty.
 */
export function readApiKey(instanceId: string, apiKeyEnv: string | undefined): string | undefined {
  if (apiKeyEnv === undefined) return undefined;
  const key = process.env[apiKeyEnv];
  if (!key) throw new Error(`engines.${instanceId}: the environment variable ${apiKeyEnv} (apiKeyEnv) is not set`);
  return key;
}

/** Replaces the API key in upstream-provided text before it can reach a message or a log. */
export type Redactor = (text: string) => string;

/** A {@link Redactor} for `key` (identity when there is no key). */
export function redactorFor(key: string | undefined): Redactor {
  if (!key) return (t) => t;
  return (t) => t.split(key).join('***');
}

/** `url` with its scheme turned into the WebSocket (`ws`/`wss`) or HTTP (`http`/`https`) family. */
export function withScheme(url: string, family: 'ws' | 'http'): URL {
  const u = new URL(url);
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  u.protocol = family === 'ws' ? (secure ? 'wss:' : 'ws:') : secure ? 'https:' : 'http:';
  return u;
}

// ---------------------------------------------------------------- errors

/** `Failed to connect to backend: <instance>: <reason>` (seed 001 shape, protocols.md §1.4). */
function connectFailed(instanceId: string, reason: string, retryable: boolean): VoxgateError {
  return new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${instanceId}: ${reason}`, { retryable });
}

/**
 * The error for an upstream that answered a handshake (WebSocket upgrade or REST request) with an
 * HTTP error (upstreams.md §2.2 "Error mapping"; issue 10 part 2 "Auth and config errors from a
 * backend go to the client, not to failover"):
 * - 401/403 → `backend_connection_failed`, retryable **false** (the key is wrong: the client must see it);
 * - 400 and other 4xx → `config_error`, not retryable; 404 (the model is not on this backend) → `backend_connection_failed`, retryable;
 * - 429 → `rate_limit`, retryable;
 * - 5xx and anything else → `backend_connection_failed`, retryable.
 * @param detail the upstream's own error text (already redacted), appended when non-empty.
 */
export function httpStatusError(instanceId: string, status: number, detail: string): VoxgateError {
  const d = detail ? `: ${detail.slice(0, 200)}` : '';
  if (status === 401 || status === 403) return connectFailed(instanceId, `upstream rejected the API key (HTTP ${status})${d}`, false);
  if (status === 429) return new VoxgateError('rate_limit', `upstream ${instanceId} is rate limiting (HTTP 429)${d}`, { retryable: true });
  if (status === 404) return connectFailed(instanceId, `upstream has no such route or model (HTTP 404)${d}`, true);
  if (status >= 400 && status < 500) return new VoxgateError('config_error', `upstream ${instanceId} rejected the request (HTTP ${status})${d}`, { retryable: false });
  return connectFailed(instanceId, `upstream answered HTTP ${status}${d}`, true);
}

/** A network-level failure to reach the upstream → retryable `backend_connection_failed`. */
export function networkError(instanceId: string, err: unknown): VoxgateError {
  const code = (err as { code?: unknown; cause?: { code?: unknown } } | null)?.code ?? (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'connection timed out',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    EPIPE: 'connection closed',
  };
  const reason = typeof code === 'string' ? (reasons[code] ?? code) : err instanceof Error ? err.message : String(err);
  return connectFailed(instanceId, reason, true);
}

/**
 * The error for an upstream `error` frame received before `ready` (SLNG codes, protocols.md §1.3):
 * `auth_error` → not retryable `backend_connection_failed`; `config_error`/`invalid_request` →
 * `config_error`; `rate_limit` → `rate_limit`; others → retryable `backend_connection_failed`.
 */
export function initErrorFrame(instanceId: string, code: string | undefined, message: string): VoxgateError {
  const m = `${code ?? 'error'}: ${message.slice(0, 200)}`;
  switch (code) {
    case 'auth_error':
      return connectFailed(instanceId, `upstream rejected the API key (${m})`, false);
    case 'config_error':
    case 'invalid_request':
      return new VoxgateError('config_error', `upstream ${instanceId} rejected the session configuration (${m})`, { retryable: false });
    case 'rate_limit':
      return new VoxgateError('rate_limit', `upstream ${instanceId} is rate limiting (${m})`, { retryable: true });
    default:
      return connectFailed(instanceId, `upstream error during the handshake (${m})`, true);
  }
}

/** A mid-segment failure (error frame, abnormal close, stall) → retryable `provider_error`. */
export function segmentError(instanceId: string, reason: string): VoxgateError {
  return new VoxgateError('provider_error', `upstream ${instanceId}: ${reason}`, { retryable: true });
}

// ---------------------------------------------------------------- PCM

/**
 * Turns little-endian 16-bit PCM bytes, in frames of any length, into `Int16Array`s: an odd byte at
 * the end of one frame is carried into the next. (voxgate runs on little-endian hosts only.)
 */
export class PcmAssembler {
  private carry: number | null = null;
  /** @returns the whole samples available so far (empty array when none). */
  push(bytes: Uint8Array): Int16Array {
    let src = bytes;
    if (this.carry !== null) {
      const b = new Uint8Array(bytes.length + 1);
      b[0] = this.carry;
      b.set(bytes, 1);
      src = b;
      this.carry = null;
    }
    const n = src.length >> 1;
    if (src.length & 1) this.carry = src[src.length - 1]!;
    const out = new Int16Array(n);
    new Uint8Array(out.buffer).set(src.subarray(0, n * 2));
    return out;
  }
}

// ---------------------------------------------------------------- WebSocket connection

/** What one upstream text frame means to a segment. */
export type UpstreamEvent =
  | { kind: 'ready' }
  | { kind: 'audio'; data: Buffer }
  /** Acknowledgement of one flush (`flushed` / `Flushed`). */
  | { kind: 'flushed' }
  /** End of an utterance's audio (`audio_end`); counted like a flush acknowledgement. */
  | { kind: 'audio_end' }
  | { kind: 'error'; code?: string; message: string }
  /** The upstream refused to perform a flush (Deepgram `Warning` on the flush rate): no acknowledgement will come. */
  | { kind: 'flush_refused'; message: string }
  | { kind: 'ignore' };

/** The protocol-specific part of an upstream WebSocket. */
export interface UpstreamWire {
  /** Frames sent right after the upgrade (SLNG `init`). */
  openFrames: string[];
  /** True when the connection is usable only after a `ready` event (SLNG); false = at once (Deepgram). */
  waitReady: boolean;
  /** Classify one JSON text frame (an object). Must never throw. */
  classify(msg: Record<string, unknown>): UpstreamEvent;
  /** Frames that speak `text` and flush it (exactly one flush). */
  segmentFrames(text: string): string[];
}

/** Options of {@link UpstreamConnection.open}. */
export interface ConnectOptions {
  instanceId: string;
  url: string;
  headers: Record<string, string>;
  wire: UpstreamWire;
  connectTimeoutMs: number;
  redact: Redactor;
  signal?: AbortSignal;
}

/** Longest upstream error-body excerpt read after a refused upgrade, bytes. */
const MAX_ERROR_BODY = 2048;
/** Largest upstream frame accepted, bytes (a bigger one closes the socket 1009 → `provider_error`). */
const MAX_FRAME_BYTES = 16 << 20;
/** Queued, unread audio above which the upstream socket is paused, bytes. */
const PAUSE_BYTES = 1 << 20;

/** Extract a short human message from an upstream error body (JSON `err_msg`/`message`/`error`, or text). */
export function errorBodyDetail(body: string): string {
  const t = body.trim();
  if (!t) return '';
  try {
    const j = JSON.parse(t) as Record<string, unknown>;
    for (const k of ['err_msg', 'message', 'error', 'detail', 'reason']) if (typeof j[k] === 'string') return (j[k] as string).slice(0, 200);
  } catch {
    /* not JSON */
  }
  return t.replace(/\s+/g, ' ').slice(0, 200);
}

/** The current segment's receiver on a connection. */
interface SegmentSink {
  /** Flush number (1-based) that ends this segment. */
  target: number;
  onAudio(data: Buffer): void;
  /** Any frame arrived (restarts the stall clock). */
  onActivity(): void;
  onDone(): void;
  onError(err: VoxgateError): void;
}

/**
 * One WebSocket to an upstream, configured at connect time for one (voice, speed). Speaks one
 * segment at a time ({@link UpstreamConnection.speak}); a segment ends at the acknowledgement of its
 * own flush — counted, so a late `flushed` of an earlier segment (an upstream that sends
 * `audio_end` first, as voxgate does) never ends a later one.
 */
export class UpstreamConnection {
  /** `performance.now()` at open, ms. */
  readonly openedAt = performance.now();
  /** Handshake (upgrade, plus `ready` when the wire waits for it) duration, ms. */
  connectMs = 0;
  /** Flushes sent / acknowledged (`flushed`) / `audio_end`s seen. */
  private flushesSent = 0;
  private flushedSeen = 0;
  private audioEndsSeen = 0;
  /** `performance.now()` of each flush sent in the last minute (Deepgram: ≤ 20 per 60 s). */
  readonly flushTimes: number[] = [];
  private sink: SegmentSink | null = null;
  private closedReason: string | null = null;
  /** Called once when the socket closes or fails (the pool drops it). */
  onGone: (() => void) | null = null;

  private constructor(
    private readonly ws: WebSocket,
    private readonly o: ConnectOptions,
  ) {}

  /** True while the socket is open and no segment failed on it. */
  get usable(): boolean {
    return this.closedReason === null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Connect, send the wire's open frames and (SLNG) wait for `ready`, within `connectTimeoutMs`.
   * @throws VoxgateError per {@link httpStatusError} / {@link networkError} / {@link initErrorFrame};
   *   a timeout or a close during the handshake → retryable `backend_connection_failed`; AbortError when `signal` aborts.
   */
  static open(o: ConnectOptions): Promise<UpstreamConnection> {
    return new Promise<UpstreamConnection>((resolve, reject) => {
      if (o.signal?.aborted) return reject(abortError());
      const started = performance.now();
      const ws = new WebSocket(o.url, { headers: o.headers, perMessageDeflate: false, handshakeTimeout: o.connectTimeoutMs, maxPayload: MAX_FRAME_BYTES });
      const conn = new UpstreamConnection(ws, o);
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        if (err) {
          conn.closedReason = err.message;
          ws.removeAllListeners('message');
          ws.on('error', () => {});
          if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'handshake failed');
          ws.terminate();
          reject(err);
        } else {
          conn.connectMs = performance.now() - started;
          resolve(conn);
        }
      };
      const onAbort = () => settle(abortError());
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => settle(connectFailed(o.instanceId, `no ${o.wire.waitReady ? '"ready"' : 'handshake'} within ${o.connectTimeoutMs} ms`, true)), o.connectTimeoutMs);
      ws.on('unexpected-response', (req, res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => {
          req.destroy();
          settle(httpStatusError(o.instanceId, res.statusCode ?? 0, o.redact(errorBodyDetail(Buffer.concat(chunks).toString('utf8')))));
        };
        res.on('data', (c: Buffer) => {
          if (size < MAX_ERROR_BODY) chunks.push(c.subarray(0, MAX_ERROR_BODY - size));
          size += c.length;
        });
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
      });
      ws.on('error', (err) => {
        if (!settled) settle(/handshake has timed out/i.test(err.message) ? connectFailed(o.instanceId, `no handshake within ${o.connectTimeoutMs} ms`, true) : networkError(o.instanceId, err));
        else conn.gone(`socket error: ${o.redact(err.message)}`);
      });
      ws.on('close', (code, reason) => {
        const why = `connection closed (${code}${reason.length ? ` ${o.redact(reason.toString('utf8')).slice(0, 120)}` : ''})`;
        if (!settled) settle(connectFailed(o.instanceId, `${why} during the handshake`, true));
        else conn.gone(why);
      });
      ws.on('open', () => {
        for (const f of o.wire.openFrames) ws.send(f);
        if (!o.wire.waitReady) settle(null);
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          if (settled) conn.audio(toBuffer(data));
          return;
        }
        const ev = classifyText(o.wire, data);
        if (!settled) {
          if (ev.kind === 'ready') settle(null);
          else if (ev.kind === 'error') settle(initErrorFrame(o.instanceId, ev.code, o.redact(ev.message)));
          return;
        }
        conn.event(ev);
      });
    });
  }

  /**
   * Speak one segment: send its text and one flush, then yield its PCM until the flush is
   * acknowledged. Only one segment at a time per connection.
   * @param stallMs no frame for this long while the consumer waits → retryable `provider_error`.
   * @throws VoxgateError `provider_error` (retryable) on an upstream error frame, a close before the
   *   acknowledgement, a refused flush or a stall; AbortError when `signal` aborts (the socket is then closed).
   */
  async *speak(text: string, signal: AbortSignal | undefined, stallMs: number): AsyncGenerator<Int16Array> {
    if (!this.usable) throw segmentError(this.o.instanceId, `connection already closed (${this.closedReason ?? 'not open'})`);
    const queue: Buffer[] = [];
    let queued = 0;
    let paused = false;
    let done = false;
    let failure: Error | null = null;
    let wake: (() => void) | null = null;
    const poke = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const pcm = new PcmAssembler();
    this.flushesSent++;
    const sink: SegmentSink = {
      target: this.flushesSent,
      onAudio: (d) => {
        queue.push(d);
        queued += d.length;
        if (queued > PAUSE_BYTES && !paused) {
          paused = true;
          this.ws.pause();
        }
        poke();
      },
      onActivity: poke,
      onDone: () => {
        done = true;
        poke();
      },
      onError: (e) => {
        failure ??= e;
        poke();
      },
    };
    this.sink = sink;
    const onAbort = () => {
      failure ??= abortError();
      this.close('segment aborted'); // stop the upstream's audio at once, even while the consumer is busy
      poke();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let completed = false;
    try {
      if (signal?.aborted) throw abortError();
      const now = performance.now();
      this.flushTimes.push(now);
      while (this.flushTimes.length && now - this.flushTimes[0]! > 60_000) this.flushTimes.shift();
      for (const f of this.o.wire.segmentFrames(text)) this.ws.send(f);
      for (;;) {
        if (signal?.aborted) throw abortError();
        const b = queue.shift();
        if (b) {
          queued -= b.length;
          if (paused && queued < PAUSE_BYTES / 2) {
            paused = false;
            this.ws.resume();
          }
          const samples = pcm.push(b);
          if (samples.length) yield samples;
          continue;
        }
        // Done first: an upstream that closes right after the segment's end (smallest.ai closes after
        // `complete`) must not fail a segment whose audio has all arrived but not yet been read.
        if (done) break;
        if (failure) throw failure;
        // The stall clock runs only while the consumer waits for audio that does not come.
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            wake = null;
            failure ??= segmentError(this.o.instanceId, `no audio or message from upstream for ${stallMs} ms`);
            resolve();
          }, stallMs);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      completed = true;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (this.sink === sink) this.sink = null;
      if (paused) this.ws.resume();
      // Stopped early (abort, error, consumer `break`): the upstream may still be sending this
      // segment's audio, so this connection can never be reused — close it.
      if (!completed) this.close(signal?.aborted ? 'segment aborted' : 'segment failed');
    }
  }

  /** Close the socket (a normal close; the socket is destroyed if the upstream does not answer within 1 s). */
  close(reason = 'done'): void {
    this.gone(reason);
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      try {
        this.ws.close(1000, reason.slice(0, 120));
      } catch {
        this.ws.terminate();
      }
      setTimeout(() => this.ws.terminate(), 1000).unref();
    }
  }

  private audio(data: Buffer): void {
    this.sink?.onAudio(data); // audio outside a segment (never expected) is dropped
  }

  private event(ev: UpstreamEvent): void {
    this.sink?.onActivity();
    switch (ev.kind) {
      case 'audio':
        this.audio(ev.data);
        return;
      case 'flushed':
        this.flushedSeen++;
        if (this.sink && this.flushedSeen >= this.sink.target) this.sink.onDone();
        return;
      case 'audio_end':
        this.audioEndsSeen++;
        if (this.sink && this.audioEndsSeen >= this.sink.target) this.sink.onDone();
        return;
      case 'error':
        if (this.sink) this.sink.onError(segmentError(this.o.instanceId, `upstream error ${ev.code ?? ''}: ${this.o.redact(ev.message).slice(0, 200)}`.replace(/ :/, ':')));
        else this.close('upstream error while idle');
        return;
      case 'flush_refused':
        if (this.sink) this.sink.onError(segmentError(this.o.instanceId, `upstream refused the flush: ${this.o.redact(ev.message).slice(0, 200)}`));
        else this.close('flush refused');
        return;
      case 'ready':
      case 'ignore':
        return;
    }
  }

  private gone(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.sink?.onError(segmentError(this.o.instanceId, `${reason} before the end of the segment`));
    const g = this.onGone;
    this.onGone = null;
    g?.();
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data as ArrayBuffer);
}

/** Classify one text frame: malformed JSON and non-objects are ignored (never a crash). */
function classifyText(wire: UpstreamWire, data: WebSocket.RawData): UpstreamEvent {
  let json: unknown;
  try {
    json = JSON.parse(toBuffer(data).toString('utf8'));
  } catch {
    return { kind: 'ignore' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { kind: 'ignore' };
  try {
    return wire.classify(json as Record<string, unknown>);
  } catch {
    return { kind: 'ignore' };
  }
}

// ---------------------------------------------------------------- pool

/** Options of {@link ConnectionPool}. */
export interface PoolOptions {
  /** Idle time after which a warm connection is closed, ms; 0 = no reuse. */
  idleMs: number;
  /** Open a new connection for `key`. */
  connect: (key: string, signal?: AbortSignal) => Promise<UpstreamConnection>;
  /** Extra reuse condition (e.g. Deepgram's flush budget); default always. */
  reusable?: (c: UpstreamConnection) => boolean;
}

/** An acquired connection and whether it came warm from the pool (it may then have gone stale). */
export interface Acquired {
  conn: UpstreamConnection;
  warm: boolean;
}

/**
 * At most one idle connection per key (`voice|speed`): {@link acquire} takes it (or awaits one being
 * warmed by `prepare`, or opens a new one), {@link release} puts a cleanly finished connection back —
 * or closes it when the slot is taken, reuse is off, or the pool is shut down.
 */
export class ConnectionPool {
  private readonly idle = new Map<string, { conn: UpstreamConnection; timer: NodeJS.Timeout }>();
  private readonly warming = new Map<string, Promise<UpstreamConnection | null>>();
  private readonly open = new Set<UpstreamConnection>();
  private shut = false;

  constructor(private readonly o: PoolOptions) {}

  /** Connections open now (idle and busy). */
  get size(): number {
    return this.open.size;
  }

  /** @throws as `connect`. */
  async acquire(key: string, signal?: AbortSignal): Promise<Acquired> {
    const idle = this.takeIdle(key);
    if (idle) return { conn: idle, warm: true };
    const w = this.warming.get(key);
    if (w) {
      const c = await w;
      const again = this.takeIdle(key);
      if (again) return { conn: again, warm: true };
      void c;
    }
    const conn = await this.o.connect(key, signal);
    this.track(conn);
    return { conn, warm: false };
  }

  /** A segment finished cleanly on `conn`: keep it warm for `key`, or close it. */
  release(key: string, conn: UpstreamConnection): void {
    if (this.shut || this.o.idleMs <= 0 || !conn.usable || this.idle.has(key) || !(this.o.reusable?.(conn) ?? true)) {
      conn.close();
      return;
    }
    const timer = setTimeout(() => {
      if (this.idle.get(key)?.conn === conn) this.idle.delete(key);
      conn.close('idle');
    }, this.o.idleMs);
    timer.unref();
    this.idle.set(key, { conn, timer });
  }

  /** Open a warm connection for `key` in the background unless one is idle or being opened. Never throws. */
  warm(key: string): void {
    if (this.shut || this.o.idleMs <= 0 || this.idle.has(key) || this.warming.has(key)) return;
    const p = this.o
      .connect(key)
      .then((conn) => {
        this.track(conn);
        this.release(key, conn);
        return conn;
      })
      .catch(() => null)
      .finally(() => this.warming.delete(key));
    this.warming.set(key, p);
  }

  /** Close every connection; later releases close theirs. */
  shutdown(): void {
    this.shut = true;
    for (const { conn, timer } of this.idle.values()) {
      clearTimeout(timer);
      conn.close('shutdown');
    }
    this.idle.clear();
    for (const c of this.open) c.close('shutdown');
  }

  private takeIdle(key: string): UpstreamConnection | null {
    const e = this.idle.get(key);
    if (!e) return null;
    this.idle.delete(key);
    clearTimeout(e.timer);
    return e.conn.usable ? e.conn : null;
  }

  private track(conn: UpstreamConnection): void {
    this.open.add(conn);
    conn.onGone = () => {
      this.open.delete(conn);
      for (const [k, e] of this.idle) {
        if (e.conn === conn) {
          clearTimeout(e.timer);
          this.idle.delete(k);
        }
      }
    };
    if (!conn.usable) conn.onGone();
  }
}
