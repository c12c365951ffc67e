/**
 * What the two upstream STT engine types (`slng`, `deepgram`; issue 10 part 2) share: typed settings,
 * the API key read from the environment, the WebSocket connect with deadline/abort and the mapping of
 * handshake failures to catalogue errors, and a relay stream base class (ping/stall watchdog,
 * keepalive, `finalize`/`close` bookkeeping, backlog).
 *
 * Error mapping (shared/spec/upstreams.md §2.2, issue 10 "Failover"):
 *
 * | upstream                                   | error                                                        | retryable |
 * |--------------------------------------------|--------------------------------------------------------------|-----------|
 * | refused / DNS / reset / timeout / 5xx / other 4xx at the upgrade | `backend_connection_failed` `Failed to connect to backend: <reason>` | true |
 * | 401 / 403 at the upgrade                   | `backend_connection_failed` `Failed to connect to backend: 401 Unauthorized` | false |
 * | 400 at the upgrade                         | `config_error` with the upstream's detail                    | false     |
 * | 429 at the upgrade                         | `rate_limit`                                                 | true      |
 * | close ≠ 1000 mid-stream, silence (no frame or pong for `stallTimeoutMs`), malformed frame | `provider_error` | true |
 *
 * The API key is never logged, never put in an error message (every upstream text that reaches a
 * message is passed through {@link redact}) and never sent anywhere but the upstream's header.
 */
import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { VoxgateError, type ErrorCode } from '../../../util/errors.js';
import type { RequestContext } from '../../context.js';
import type { SttCapabilities, SttEngine, SttEngineStats, SttFinal, SttStream, SttStreamConfig, SttStreamEvents, SttWord } from '../types.js';

/** PCM rate sent upstream (Hz): linear16 mono at 16 kHz. */
export const UPSTREAM_SAMPLE_RATE = 16000;
/** Largest upstream frame accepted (bytes); a larger one ends the stream with a `provider_error` (close 1009). */
export const UPSTREAM_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Bytes per second of the PCM sent upstream (16-bit mono at {@link UPSTREAM_SAMPLE_RATE}). */
export const UPSTREAM_BYTES_PER_SECOND = UPSTREAM_SAMPLE_RATE * 2;

/**
 * Settings common to both upstream types (`engines.<instanceId>` in the config). Times in ms.
 * Each type extends this with its own keys and validates strictly (unknown keys are refused).
 */
export const upstreamSettingsShape = {
  /** Engine type (`slng` / `deepgram`); read by the registry. */
  type: z.string().min(1).optional(),
  /** Region label of this instance; read by the routing layer. */
  region: z.string().min(1).optional(),
  /** Base URL of the upstream, `ws:` or `wss:` (e.g. `ws://127.0.0.1:9000`, `wss://api.deepgram.com`). A path is kept as a prefix. */
  url: z
    .string()
    .url()
    .refine((u) => /^wss?:\/\//i.test(u), 'url must start with ws:// or wss://'),
  /** Upstream model: slng → the model code in the path (`local/pocketsphinx:en`); deepgram → the `model` query value (`nova-3`). */
  model: z.string().min(1),
  /** NAME of the environment variable holding the upstream API key (read at each connect). Absent: no `Authorization` header. */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'apiKeyEnv is the NAME of an environment variable, not the key')
    .optional(),
  /** ISO-639-1 languages the upstream accepts (→ `capabilities.languages`). */
  languages: z.array(z.string().min(2)).min(1).default(['en']),
  /** Budget for the upgrade (and, for slng, the `ready` frame), ms. */
  connectTimeoutMs: z.number().int().positive().default(5000),
  /** WebSocket ping period while the stream is open, ms. */
  pingIntervalMs: z.number().int().positive().default(1000),
  /** No frame and no pong for this long while the stream is open → retryable `provider_error`, ms. */
  stallTimeoutMs: z.number().int().positive().default(3000),
  /** Send the upstream's keepalive frame when nothing was sent for this long (Deepgram closes after 10 s without data), ms. */
  keepAliveMs: z.number().int().positive().default(4000),
  /** After `finalize()`, emit an empty `fromFinalize` final if the upstream sent none within this long, ms. */
  finalizeTimeoutMs: z.number().int().positive().default(5000),
  /** `close()` waits this long for the upstream to drain and close, then terminates with a `provider_error`, ms. */
  closeTimeoutMs: z.number().int().positive().default(10000),
  /**
   * Client encodings sent to the upstream as they are, undecoded (engine contract v2: "Opus/mp3 from a
   * client passes through untouched to an upstream that takes it"); others are decoded to 16 kHz
   * linear16 by the gateway. Canonical names of src/audio/decoder.ts. Default: all of them (both
   * Deepgram and SLNG/voxgate take raw and containerised audio). `[]` decodes everything at the
   * gateway. Note: a container stream cannot be replayed to another backend mid-stream (failover
   * then ends the session with the error), raw encodings can.
   */
  /**
   * Pace (× real time) at which failover replays buffered audio to this backend (src/engines/stt/failover.ts);
   * `null` = as fast as it takes it (e.g. a voxgate worker on embedded engines). Default 1.25, Deepgram's
   * documented cap (upstreams.md §1.1); the `slng` type overrides it with `null`.
   */
  replayPace: z.number().positive().nullable().default(1.25),
  passthroughEncodings: z.array(z.enum(['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac', 'mp4'])).default(['linear16', 'mulaw', 'alaw', 'opus', 'ogg-opus', 'webm', 'mp3', 'flac', 'aac', 'mp4']),
};

/** Raw encodings (the upstream needs `encoding`/`sample_rate`/`channels`); bytes per sample. */
export const RAW_BYTES_PER_SAMPLE: Readonly<Record<string, number>> = { linear16: 2, mulaw: 1, alaw: 1 };

/**
 * The audio format a stream sends upstream: the client's own when it passes through
 * ({@link SttStreamConfig.passthrough}), else 16 kHz mono linear16.
 * @returns `encoding` (canonical), `sampleRate` Hz, `channels`, and `raw` (false for containers, whose rate the upstream reads from the stream).
 */
export function upstreamFormat(config: SttStreamConfig): { encoding: string; sampleRate: number; channels: number; raw: boolean } {
  const p = config.passthrough;
  if (!p) return { encoding: 'linear16', sampleRate: UPSTREAM_SAMPLE_RATE, channels: 1, raw: true };
  return { encoding: p.encoding, sampleRate: p.sampleRate, channels: p.channels, raw: p.encoding in RAW_BYTES_PER_SAMPLE };
}

const baseSettingsSchema = z.object(upstreamSettingsShape).strict();
/** Validated common settings, defaults filled in. */
export type UpstreamSettings = z.output<typeof baseSettingsSchema>;

/**
 * Validate `cfg.engines[instanceId]` with a type's strict schema.
 * @throws Error naming the instance (and its type) when a key is unknown or a value is invalid.
 */
export function parseUpstreamSettings<S extends z.ZodType>(schema: S, cfg: VoxgateConfig, instanceId: string, type: string): z.output<S> {
  const r = schema.safeParse(cfg.engines[instanceId] ?? {});
  if (!r.success) throw new Error(`engines.${instanceId} (type ${type}) is invalid: ${z.prettifyError(r.error)}`);
  const s = r.data as UpstreamSettings;
  if (s.pingIntervalMs >= s.stallTimeoutMs) throw new Error(`engines.${instanceId} (type ${type}) is invalid: pingIntervalMs (${s.pingIntervalMs}) must be below stallTimeoutMs (${s.stallTimeoutMs})`);
  return r.data;
}

/**
 * Replace every occurrence of each secret in `text` by `[redacted]` (so an upstream that echoes the
 * key cannot leak it into an error message).
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('[redacted]');
  return out;
}

/**
 * The API key from the environment variable `envName`, read now (so a rotated key is used by the next connect).
 * @returns undefined when no `apiKeyEnv` is configured.
 * @throws VoxgateError `backend_connection_failed` (retryable: another instance may hold a key) when the variable is unset or empty; the message names the variable, never a value.
 */
export function readApiKey(envName: string | undefined): string | undefined {
  if (envName === undefined) return undefined;
  const v = process.env[envName];
  if (!v) throw new VoxgateError('backend_connection_failed', `Failed to connect to backend: API key environment variable ${envName} is not set`, { retryable: true });
  return v;
}

/** `Failed to connect to backend: <reason>` (seed 001 shape) with `retryable`. */
export function connectFailed(reason: string, retryable = true): VoxgateError {
  return new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${reason}`, { retryable });
}

/**
 * Map a refused upgrade to a catalogue error (upstreams.md §2.2).
 * @param status HTTP status of the upgrade response; `detail` the upstream's own message (already redacted), used for 400.
 */
export function handshakeError(status: number, statusText: string, detail: string): VoxgateError {
  const line = `${status} ${statusText}`.trim();
  if (status === 401 || status === 403) return connectFailed(line, false);
  if (status === 400) return new VoxgateError('config_error', `Backend refused the configuration: ${line}${detail ? `: ${detail}` : ''}`, { retryable: false });
  if (status === 429) return new VoxgateError('rate_limit', `Backend rate limit: ${line}`, { retryable: true });
  return connectFailed(line, true);
}

/** The human message of an upgrade refusal body: Deepgram `err_msg`, SLNG `message`, `error`, `dg-error`, or the text. */
function refusalDetail(res: IncomingMessage, body: string): string {
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    for (const k of ['err_msg', 'message', 'error', 'description']) {
      const v = j[k];
      if (typeof v === 'string' && v) return v;
      if (k === 'error' && typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string') return (v as { message: string }).message;
    }
  } catch {
    /* not JSON */
  }
  const h = res.headers['dg-error'];
  if (typeof h === 'string' && h) return h;
  return body.trim().slice(0, 200);
}

/** The first frames of a protocol with an application-level handshake (slng: `init` → `ready`). */
export interface UpstreamHandshake {
  /** Called once the socket is open: send the opening frames. */
  onOpen(ws: WebSocket): void;
  /**
   * A text frame received before the handshake completed.
   * @returns true when the stream is ready, a VoxgateError to refuse the start, false to keep waiting.
   */
  onText(text: string): boolean | VoxgateError;
}

/** Options of {@link connectUpstream}. */
export interface ConnectOptions {
  url: string;
  headers: Record<string, string>;
  /** Budget for the whole connect (upgrade + handshake), ms. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Values to redact from every message (the API key). */
  secrets: readonly string[];
  handshake?: UpstreamHandshake;
}

/**
 * Open a WebSocket to an upstream and complete its handshake.
 * @returns the open socket, with none of this function's listeners left on it.
 * @throws VoxgateError per the table in this module's header; `backend_connection_failed` with
 *   `timeout after <timeoutMs> ms` when the budget runs out; non-retryable `request aborted` when `signal` fires.
 */
export function connectUpstream(o: ConnectOptions): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(connectFailed('request aborted', false));
      return;
    }
    let ws: WebSocket;
    try {
      // allowSynchronousEvents false: one upstream frame per tick, so the caller of start() has
      // attached its listeners before the first result; maxPayload bounds a rogue upstream's frames.
      ws = new WebSocket(o.url, { headers: o.headers, perMessageDeflate: false, followRedirects: false, allowSynchronousEvents: false, maxPayload: UPSTREAM_MAX_FRAME_BYTES });
    } catch (err) {
      reject(connectFailed(redact(err instanceof Error ? err.message : String(err), o.secrets)));
      return;
    }
    let settled = false;
    const timer = setTimeout(() => done(connectFailed(`timeout after ${Math.round(o.timeoutMs)} ms`)), Math.max(0, o.timeoutMs));
    const onAbort = (): void => done(connectFailed('request aborted', false));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const onError = (err: Error): void => done(connectFailed(redact(err.message, o.secrets)));
    const onClose = (code: number, reason: Buffer): void => {
      const r = redact(reason.toString(), o.secrets);
      done(connectFailed(`backend closed the connection during the handshake (${code}${r ? ` ${r}` : ''})`));
    };
    const onUnexpected = (_req: unknown, res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (): void => {
        clearTimeout(bodyTimer);
        const status = res.statusCode ?? 0;
        const detail = redact(refusalDetail(res, Buffer.concat(chunks).toString('utf8')), o.secrets);
        done(handshakeError(status, STATUS_CODES[status] ?? res.statusMessage ?? '', detail));
        res.destroy();
      };
      const bodyTimer = setTimeout(finish, 1000);
      res.on('data', (c: Buffer) => {
        if (size < 4096) chunks.push(c);
        size += c.length;
      });
      res.on('end', finish);
      res.on('error', finish);
    };
    const onOpen = (): void => {
      if (!o.handshake) {
        done(null);
        return;
      }
      try {
        o.handshake.onOpen(ws);
      } catch (err) {
        done(connectFailed(redact(err instanceof Error ? err.message : String(err), o.secrets)));
      }
    };
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      if (!o.handshake || isBinary) return;
      const r = o.handshake.onText(data.toString());
      if (r === true) done(null);
      else if (r instanceof VoxgateError) done(r);
    };
    function done(err: VoxgateError | null): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      ws.off('open', onOpen);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('unexpected-response', onUnexpected);
      ws.off('error', onError);
      if (err) {
        ws.on('error', () => {}); // terminate() of a connecting socket emits one more error
        ws.terminate();
        reject(err);
      } else resolve(ws);
    }
    ws.on('open', onOpen);
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('unexpected-response', onUnexpected);
    ws.on('error', onError);
  });
}

/** The protocol-specific frames and timings a relay stream needs. */
export interface RelayOptions {
  settings: UpstreamSettings;
  /**
   * Text frames of the upstream's control messages. `keepalive: null` = the protocol has no keepalive
   * message (Cartesia Ink, upstreams.md §1.7): the WebSocket pings sent while the backend is quiet keep it open.
   */
  frames: { finalize: string; close: string; keepalive: string | null };
  secrets: readonly string[];
  signal?: AbortSignal;
  /** Called once when the stream ends (closed, failed or aborted). */
  onEnd: () => void;
  /**
   * How audio bytes are framed upstream (issue 11: providers taking audio as base64 in JSON text
   * frames, e.g. ElevenLabs Scribe `input_audio_chunk`, upstreams.md §1.5). Receives the bytes of one
   * `write()`/`writeEncoded()` call and returns the frame to send. Absent: one binary frame of the bytes as they are.
   */
  encodeAudio?: (bytes: Buffer) => string;
}

/**
 * The relay half shared by both types: binary PCM goes out at once, text frames come in through
 * {@link UpstreamSttStream.onText} (the subclass's protocol), and the base keeps the contract of
 * src/engines/stt/types.ts — exactly one `fromFinalize` final per `finalize()`, `close()` drains and
 * resolves when the upstream closes (bounded), `abort()` ends at once, errors are `VoxgateError`s
 * with `retryable`, a stall or an abnormal close is a retryable `provider_error`. Event handlers never throw.
 */
export abstract class UpstreamSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  /** `open` → (`closing`) → `done`. */
  protected state: 'open' | 'closing' | 'done' = 'open';
  /** End (s) of the last final emitted: where a final or partial without its own `start` begins. */
  protected lastFinalEnd = 0;
  private bytes = 0;
  private lastRx = performance.now();
  private lastTx = performance.now();
  /** When the watchdog last ran (to forgive time our own event loop was blocked). */
  private lastTick = performance.now();
  private readonly ticker: NodeJS.Timeout;
  /** One timer per outstanding `finalize()`, oldest first. */
  private readonly pendingFinalize: NodeJS.Timeout[] = [];
  private closing: Promise<void> | null = null;
  private resolveClose: (() => void) | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private readonly onAbortSignal = (): void => this.abort();

  constructor(
    protected readonly ws: WebSocket,
    protected readonly config: SttStreamConfig,
    protected readonly o: RelayOptions,
  ) {
    super();
    ws.on('message', (data, isBinary) => {
      this.lastRx = performance.now();
      if (this.state === 'done' || isBinary) return;
      try {
        this.onText(data.toString());
      } catch (err) {
        this.fail(this.providerError(`malformed frame from backend: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
    ws.on('pong', () => (this.lastRx = performance.now()));
    ws.on('ping', () => (this.lastRx = performance.now()));
    ws.on('error', (err) => this.fail(this.providerError(`backend connection error: ${err.message}`)));
    ws.on('close', (code, reason) => this.onUpstreamClose(code, reason.toString()));
    this.ticker = setInterval(() => this.tick(), o.settings.pingIntervalMs);
    if (o.signal) o.signal.addEventListener('abort', this.onAbortSignal, { once: true });
  }

  /** Handle one upstream text frame (protocol-specific). May throw on a malformed frame: the base turns it into a `provider_error`. */
  protected abstract onText(text: string): void;

  /**
   * Seconds of audio written: from the bytes for PCM and raw passthrough; for a passthrough container
   * (whose duration cannot be read from its byte count) the end of the latest result.
   */
  get audioSeconds(): number {
    const f = upstreamFormat(this.config);
    if (!f.raw) return this.resultEnd;
    return this.bytes / (f.sampleRate * f.channels * RAW_BYTES_PER_SAMPLE[f.encoding]!);
  }

  /** End (seconds from stream start) of the latest result seen; the audio clock of passthrough containers. */
  protected resultEnd = 0;

  /**
   * Passthrough: the client's bytes go upstream unchanged, one binary frame per call (never an empty one).
   */
  writeEncoded(bytes: Uint8Array): void {
    if (this.state !== 'open' || bytes.length === 0) return;
    // No copy: ws masks a Buffer into a frame of its own (its `readOnly` path) and never writes to it.
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.bytes += buf.length;
    this.send(this.audioFrame(buf));
  }

  /** Bytes the socket has not flushed yet, as seconds of audio. */
  get backlogSeconds(): number {
    return this.state === 'done' ? 0 : this.ws.bufferedAmount / UPSTREAM_BYTES_PER_SECOND;
  }

  write(pcm: Int16Array): void {
    if (this.state !== 'open' || pcm.length === 0) return; // never an empty binary frame (Deepgram: legacy close signal, §2.3)
    // A view, not a copy: ws copies it into the masked frame synchronously (no compression, no queue).
    const view = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    this.bytes += view.length;
    this.send(this.audioFrame(view));
  }

  /**
   * The frame that carries `audio` (bytes as written) upstream. Default: the bytes themselves, one
   * binary frame. A protocol that frames audio as JSON (base64; Sarvam, issue 11) overrides it.
   * Must not keep `audio` (it may be a view of the caller's buffer).
   */
  protected audioFrame(audio: Buffer): string | Buffer {
    return this.o.encodeAudio ? this.o.encodeAudio(audio) : audio;
  }

  /** `finalize()` calls not yet answered by a `fromFinalize` final (issue 11: providers whose finalize answer is a marker, e.g. Soniox `<fin>`). */
  protected get outstandingFinalizes(): number {
    return this.pendingFinalize.length;
  }

  finalize(): void {
    if (this.state !== 'open') return;
    this.send(this.o.frames.finalize);
    this.pendingFinalize.push(setTimeout(() => this.finalizeTimedOut(), this.o.settings.finalizeTimeoutMs));
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.state === 'done') return (this.closing = Promise.resolve());
    this.closing = new Promise((resolve) => (this.resolveClose = resolve));
    this.state = 'closing';
    this.send(this.o.frames.close);
    this.closeTimer = setTimeout(() => this.fail(this.providerError(`backend did not close the stream within ${this.o.settings.closeTimeoutMs} ms`)), this.o.settings.closeTimeoutMs);
    return this.closing;
  }

  abort(): void {
    if (this.state === 'done') return;
    this.end();
    this.ws.terminate();
  }

  /** Emit a final with the contract's `fromFinalize` bookkeeping: `upstreamFromFinalize` answers the oldest outstanding `finalize()`. */
  protected emitFinal(f: Omit<SttFinal, 'fromFinalize'>, upstreamFromFinalize: boolean): void {
    let fromFinalize = false;
    if (upstreamFromFinalize && this.pendingFinalize.length > 0) {
      clearTimeout(this.pendingFinalize.shift()!);
      fromFinalize = true;
    }
    this.lastFinalEnd = Math.max(this.lastFinalEnd, f.start + f.duration);
    this.safeEmit('final', { ...f, fromFinalize });
  }

  /** Emit a non-final event; never throws (a listener's exception is not the upstream's fault, but must not kill the socket handler). */
  protected safeEmit<K extends 'partial' | 'final' | 'speech_started'>(ev: K, ...args: SttStreamEvents[K]): void {
    if (this.state === 'done') return;
    const r = args[0] as { start?: number; duration?: number };
    if (typeof r.start === 'number' && typeof r.duration === 'number') this.resultEnd = Math.max(this.resultEnd, r.start + r.duration);
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(ev, ...args);
    } catch {
      /* a listener threw; the stream itself is fine */
    }
  }

  /** A retryable `provider_error` with the upstream text redacted. */
  protected providerError(message: string): VoxgateError {
    return new VoxgateError('provider_error', redact(message, this.o.secrets), { retryable: true });
  }

  /**
   * End the stream with `err`, terminating the socket. Emitted once, and only when someone listens
   * (an `error` without listeners would throw out of a socket handler and crash the process).
   */
  protected fail(err: VoxgateError): void {
    if (this.state === 'done') return;
    this.end();
    this.ws.terminate();
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
      } catch {
        /* listener threw */
      }
    }
  }

  private send(data: string | Buffer): void {
    // The backend has begun closing (its close frame arrived): the close event, due next, reports
    // why with its code and reason; a failed write now would hide that behind "send failed".
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.lastTx = performance.now();
    try {
      this.ws.send(data, (err) => {
        if (err && this.state !== 'done') this.fail(this.providerError(`send to backend failed: ${err.message}`));
      });
    } catch (err) {
      this.fail(this.providerError(`send to backend failed: ${err instanceof Error ? err.message : String(err)}`));
    }
  }

  private emptyFinal(): Omit<SttFinal, 'fromFinalize'> {
    return { transcript: '', confidence: 0, ...(this.config.wordTimestamps ? { words: [] } : {}), start: this.lastFinalEnd, duration: 0, language: this.config.language, speechFinal: false };
  }

  private finalizeTimedOut(): void {
    if (this.state === 'done' || this.pendingFinalize.length === 0) return;
    this.pendingFinalize.shift();
    this.safeEmit('final', { ...this.emptyFinal(), fromFinalize: true });
  }

  private tick(): void {
    if (this.state === 'done') return;
    const now = performance.now();
    // Time our own event loop was blocked is not the backend's silence: its pongs may be waiting
    // unread in the socket (timers run before I/O), so the late part of this tick is forgiven.
    const late = now - this.lastTick - this.o.settings.pingIntervalMs;
    this.lastTick = now;
    if (late > 0) this.lastRx += late;
    if (now - this.lastRx > this.o.settings.stallTimeoutMs) {
      this.fail(this.providerError(`no response from backend for ${this.o.settings.stallTimeoutMs} ms`));
      return;
    }
    // A ping only when the backend has been quiet for a ping period: its own frames already prove it
    // alive, and at 1000 relayed streams a ping per second each is 1000 needless writes a second.
    if (now - this.lastRx >= this.o.settings.pingIntervalMs) {
      try {
        this.ws.ping();
      } catch {
        /* the close event reports it */
      }
    }
    const keepalive = this.o.frames.keepalive;
    if (keepalive !== null && this.state === 'open' && now - this.lastTx >= this.o.settings.keepAliveMs) this.send(keepalive);
  }

  private onUpstreamClose(code: number, reason: string): void {
    if (this.state === 'done') return;
    if (code === 1000 && this.state === 'closing') {
      // Drained: answer every finalize the upstream left unanswered, then resolve close().
      while (this.pendingFinalize.length > 0) {
        clearTimeout(this.pendingFinalize.shift()!);
        this.safeEmit('final', { ...this.emptyFinal(), fromFinalize: true });
      }
      this.end();
      return;
    }
    this.fail(this.providerError(`backend closed the stream (${code}${reason ? ` ${reason}` : ''})`));
  }

  /** Release timers and listeners, resolve a pending close(), tell the engine. */
  private end(): void {
    this.state = 'done';
    clearInterval(this.ticker);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    for (const t of this.pendingFinalize.splice(0)) clearTimeout(t);
    this.o.signal?.removeEventListener('abort', this.onAbortSignal);
    this.resolveClose?.();
    this.resolveClose = null;
    this.o.onEnd();
  }
}

/** Map an upstream error frame's code to ours: auth/config stay the client's (non-retryable), rate limits stay rate limits, anything else is a retryable `provider_error`. */
export function upstreamFrameError(code: string, message: string, secrets: readonly string[]): VoxgateError {
  const msg = redact(message || code, secrets);
  const same: Record<string, ErrorCode> = {
    auth_error: 'auth_error',
    config_error: 'config_error',
    invalid_request: 'invalid_request',
    invalid_audio: 'invalid_audio',
    payload_too_large: 'payload_too_large',
    rate_limit: 'rate_limit',
    rate_limit_exceeded: 'rate_limit',
    backend_connection_failed: 'backend_connection_failed',
    // Deepgram err_code values (util/errors.ts ERRORS[].deepgram).
    INVALID_AUTH: 'auth_error',
    INSUFFICIENT_PERMISSIONS: 'auth_error',
    INVALID_QUERY_PARAMETER: 'config_error',
    'Bad Request': 'invalid_request',
    TOO_MANY_REQUESTS: 'rate_limit',
  };
  const c = Object.hasOwn(same, code) ? same[code]! : 'provider_error';
  // The backend refusing *our* key is not the client's auth error (which would tell it its own
  // voxgate key is wrong): it is the backend failing, as SLNG reports a rejected provider key
  // (upstreams.md §2.2 error mapping). Not failed over: another backend would refuse the same key.
  if (c === 'auth_error') return new VoxgateError('backend_connection_failed', `Failed to connect to backend: the backend refused the gateway's key (${msg})`, { retryable: false });
  return new VoxgateError(c, msg, { retryable: c === 'provider_error' || c === 'rate_limit' || c === 'backend_connection_failed' });
}

/** A word as both upstream protocols send it (Deepgram §2.4 names; times s from stream start). */
export interface UpstreamWord {
  word: string;
  start: number;
  end: number;
  confidence?: number;
  punctuated_word?: string;
  speaker?: number;
}

/** Upstream words → {@link SttWord}s unchanged (`punctuated_word` → `punctuatedWord`; a missing confidence → 0). */
export function relayWords(ws: readonly UpstreamWord[]): SttWord[] {
  return ws.map((w) => ({
    word: w.word,
    start: w.start,
    end: w.end,
    confidence: w.confidence ?? 0,
    ...(w.punctuated_word !== undefined ? { punctuatedWord: w.punctuated_word } : {}),
    ...(w.speaker !== undefined ? { speaker: w.speaker } : {}),
  }));
}

/**
 * Parse an upstream text frame's JSON and its `type`.
 * @throws Error when it is not JSON or has no string `type` (the stream turns it into a `provider_error`).
 */
export function parseTypedFrame(text: string): { type: string; json: unknown } {
  const json: unknown = JSON.parse(text);
  const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
  if (typeof type !== 'string') throw new Error('frame without a "type"');
  return { type, json };
}

/** A request to open one upstream stream (the base adds `Authorization` and `X-Request-Id`). */
export interface UpstreamRequest {
  url: string;
  handshake?: UpstreamHandshake;
  /** Extra upgrade headers the protocol needs (e.g. Cartesia's `Cartesia-Version`); never the key (the base adds it). */
  headers?: Record<string, string>;
}

/** What differs between upstream protocols beyond the request: auth scheme, control frames, result parsing. */
export interface UpstreamProtocol {
  /** `Authorization: <scheme> <key>` (slng `Bearer`, Deepgram `Token`). */
  authScheme: string;
  /**
   * When set, the key goes as-is in this header instead of `Authorization` (ElevenLabs `xi-api-key`,
   * upstreams.md §1.4/§1.5). Absent: `Authorization: <authScheme> <key>`.
   */
  authHeader?: string;
  /** Audio framing of the protocol's streams ({@link RelayOptions.encodeAudio}); absent: binary frames. */
  encodeAudio?: (bytes: Buffer) => string;
  /** Headers carrying the key instead of `Authorization` (e.g. Sarvam `API-Subscription-Key`); optional (issue 11). */
  authHeaders?: (key: string) => Record<string, string>;
  /** Text frames of the control messages. */
  frames: RelayOptions['frames'];
  /** Wrap an open socket in the protocol's relay stream. */
  createStream(ws: WebSocket, config: SttStreamConfig, o: RelayOptions): UpstreamSttStream;
}

/**
 * The engine half shared by both types: settings, capabilities as data, the connect with the
 * request's deadline and abort signal, stream bookkeeping for stats and shutdown.
 */
export abstract class UpstreamSttEngine implements SttEngine {
  readonly capabilities: SttCapabilities;
  /** The upstream model (served as `model_info.version`). */
  readonly version: string;
  /** Failover replay pace (setting `replayPace`). */
  readonly replayPace: number | null;
  private readonly streams = new Set<UpstreamSttStream>();

  constructor(
    readonly id: string,
    protected readonly settings: UpstreamSettings,
    private readonly protocol: UpstreamProtocol,
  ) {
    this.version = settings.model;
    this.replayPace = settings.replayPace;
    this.capabilities = {
      partials: true,
      wordTimestamps: true,
      diarization: false,
      languages: [...settings.languages],
      inputSampleRate: UPSTREAM_SAMPLE_RATE,
      endpointing: true,
      vadEvents: true,
      passthroughEncodings: [...settings.passthroughEncodings],
    };
  }

  /** The URL and handshake of one stream (protocol-specific). `secrets` are to be redacted from any message the handshake builds. */
  protected abstract request(config: SttStreamConfig, secrets: readonly string[]): UpstreamRequest;

  /** Nothing to warm: connections are per stream. */
  async init(): Promise<void> {}

  /**
   * Take a provider concurrency slot before dialling (issue 11; src/engines/limits.ts). Default: none.
   * @returns the slot's release (called once when the stream ends or the connect fails), or undefined.
   * @throws VoxgateError `rate_limit` when no slot frees within the type's bounded wait.
   */
  protected async acquireSlot(_ctx: RequestContext | undefined): Promise<(() => void) | undefined> {
    return undefined;
  }

  /**
   * Open the upstream stream (upstreams.md §2.2 for the errors).
   * @param ctx request id (sent as `X-Request-Id`), abort signal, connect deadline (`performance.now()` ms).
   * @throws VoxgateError `config_error` for a language the instance does not list, or as in {@link connectUpstream}.
   */
  async start(config: SttStreamConfig, ctx?: RequestContext): Promise<SttStream> {
    if (!this.capabilities.languages.includes(config.language)) {
      throw new VoxgateError('config_error', `language "${config.language}" is not served by engine ${this.id} (languages: ${this.capabilities.languages.join(', ')})`, { retryable: false });
    }
    // BYOK: the client's provider key replaces the configured one (redacted like it).
    const apiKey = ctx?.providerKey ?? readApiKey(this.settings.apiKeyEnv);
    const secrets = apiKey ? [apiKey] : [];
    let timeoutMs = this.settings.connectTimeoutMs;
    if (ctx?.connectDeadline !== undefined) timeoutMs = Math.min(timeoutMs, Math.max(0, ctx.connectDeadline - performance.now()));
    const req = this.request(config, secrets);
    const headers: Record<string, string> = { ...req.headers };
    if (apiKey) {
      if (this.protocol.authHeaders) Object.assign(headers, this.protocol.authHeaders(apiKey));
      else if (this.protocol.authHeader) headers[this.protocol.authHeader] = apiKey;
      else headers.Authorization = `${this.protocol.authScheme} ${apiKey}`;
    }
    if (ctx?.requestId) headers['X-Request-Id'] = ctx.requestId;
    const release = await this.acquireSlot(ctx);
    if (ctx?.connectDeadline !== undefined) timeoutMs = Math.min(timeoutMs, Math.max(0, ctx.connectDeadline - performance.now()));
    let ws: WebSocket;
    try {
      ws = await connectUpstream({ url: req.url, headers, timeoutMs, signal: ctx?.signal, secrets, handshake: req.handshake });
    } catch (err) {
      release?.();
      throw err;
    }
    const stream = this.protocol.createStream(ws, config, {
      settings: this.settings,
      frames: this.protocol.frames,
      secrets,
      signal: ctx?.signal,
      onEnd: () => {
        this.streams.delete(stream);
        release?.();
      },
      ...(this.protocol.encodeAudio ? { encodeAudio: this.protocol.encodeAudio } : {}),
    });
    this.streams.add(stream);
    return stream;
  }

  stats(): SttEngineStats {
    return { activeStreams: this.streams.size, idleDecoders: 0, busyDecoders: 0 };
  }

  /** Abort every open stream. */
  async shutdown(): Promise<void> {
    for (const s of [...this.streams]) s.abort();
  }
}
