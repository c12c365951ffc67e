/**
 * A per-segment {@link TtsEngine} over an upstream WebSocket TTS protocol (the `slng` and `deepgram`
 * types, issue 10 part 2). Each `synthesize` call speaks one segment on a connection configured for
 * its (voice, speed): a warm one from the {@link ConnectionPool} when there is one, else a new one.
 *
 * Reuse is safe only after a segment ended cleanly (its flush acknowledged): a segment that was
 * aborted, failed or abandoned closes its connection. A warm connection that fails before its
 * first audio (e.g. the upstream closed it while idle) is retried once on a fresh connection, so
 * reuse never turns into an error the client sees.
 */
import { VoxgateError } from '../../../util/errors.js';
import { abortError } from '../process.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../types.js';
import { ConnectionPool, UpstreamConnection, type Redactor, type UpstreamWire } from './common.js';

/** Where and how to connect for one (voice, speed). */
export interface WsEndpoint {
  url: string;
  headers: Record<string, string>;
  wire: UpstreamWire;
}

/** What a concrete upstream type supplies. */
export interface WsEngineSpec {
  /** Engine instance id (also the engine id). */
  instanceId: string;
  version: string;
  capabilities: TtsCapabilities;
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  idleConnectionMs: number;
  /** Read secrets (the API key) and check settings; called by `init()`. @throws Error naming the instance. */
  init(): void;
  /** The endpoint for one voice and speed (after `init`). */
  endpoint(voice: TtsVoice, speed: number): WsEndpoint;
  /** Redacts the API key from upstream text (after `init`). */
  redact(): Redactor;
  /** Extra reuse condition for a connection that finished a segment cleanly. */
  reusable?(c: UpstreamConnection): boolean;
}

/** Await `p`, or reject with an AbortError as soon as `signal` aborts. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** The WebSocket upstream engine (see the module docs). */
export class WsUpstreamTtsEngine implements TtsEngine {
  readonly id: string;
  readonly version: string;
  readonly capabilities: TtsCapabilities;
  private readonly pool: ConnectionPool;
  private ready = false;
  private active = 0;
  private finished = 0;

  constructor(private readonly spec: WsEngineSpec) {
    this.id = spec.instanceId;
    this.version = spec.version;
    this.capabilities = spec.capabilities;
    this.pool = new ConnectionPool({
      idleMs: spec.idleConnectionMs,
      connect: (key, signal) => this.connect(key, signal),
      reusable: spec.reusable ? (c) => spec.reusable!(c) : undefined,
    });
  }

  /** Upstream connections open now (idle and busy); for tests and status. */
  get openConnections(): number {
    return this.pool.size;
  }

  async init(): Promise<void> {
    this.spec.init();
    this.ready = true;
  }

  private voice(id: string): TtsVoice | undefined {
    const v = id.toLowerCase();
    return this.capabilities.voices.find((x) => x.id === v);
  }

  private connect(key: string, signal?: AbortSignal): Promise<UpstreamConnection> {
    const sep = key.lastIndexOf('|');
    const voice = this.voice(key.slice(0, sep))!;
    const ep = this.spec.endpoint(voice, Number(key.slice(sep + 1)));
    return UpstreamConnection.open({
      instanceId: this.spec.instanceId,
      url: ep.url,
      headers: ep.headers,
      wire: ep.wire,
      connectTimeoutMs: this.spec.connectTimeoutMs,
      redact: this.spec.redact(),
      signal,
    });
  }

  /**
   * Speak one segment. Iteration throws: `config_error` for a voice this instance does not offer;
   * the handshake errors of `common.ts` (`backend_connection_failed`, retryable except for 401/403;
   * `config_error`; `rate_limit`); retryable `provider_error` for a mid-segment failure; AbortError
   * when `signal` aborts (the upstream socket is closed at once).
   */
  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const voice = this.voice(req.voice);
    const sampleRate = voice?.sampleRate ?? this.capabilities.voices[0]!.sampleRate;
    const self = this;
    async function* run(): AsyncGenerator<Int16Array> {
      if (!self.ready) throw new VoxgateError('internal_error', `engine ${self.id} used before init()`);
      if (!voice) throw new VoxgateError('config_error', `engine ${self.id} has no voice "${req.voice}"; available: ${self.capabilities.voices.map((v) => v.id).join(', ')}`);
      if (signal?.aborted) throw abortError();
      const key = `${voice.id}|${req.speed}`;
      self.active++;
      try {
        for (let attempt = 0; ; attempt++) {
          const pending = self.pool.acquire(key, signal);
          let acquired: Awaited<typeof pending>;
          try {
            acquired = await raceAbort(pending, signal);
          } catch (err) {
            // Aborted while a warm connection was being opened: it goes back to the pool, not astray.
            pending.then((a) => self.pool.release(key, a.conn)).catch(() => {});
            throw err;
          }
          const { conn, warm } = acquired;
          let gotAudio = false;
          let ok = false;
          try {
            for await (const chunk of conn.speak(req.text, signal, self.spec.stallTimeoutMs)) {
              gotAudio = true;
              yield chunk;
            }
            ok = true;
          } catch (err) {
            // A warm connection may have gone stale while idle: one fresh try before any audio.
            if (warm && !gotAudio && attempt === 0 && !signal?.aborted && err instanceof VoxgateError && err.retryable) continue;
            throw err;
          } finally {
            if (ok) self.pool.release(key, conn);
          }
          return;
        }
      } finally {
        self.active--;
        self.finished++;
      }
    }
    const it = run();
    return { sampleRate, [Symbol.asyncIterator]: () => it };
  }

  /** Open a warm connection for this (voice, speed) in the background (no-op when reuse is off). */
  prepare(req: Omit<TtsSynthesisRequest, 'text'>): void {
    const voice = this.voice(req.voice);
    if (!this.ready || !voice) return;
    this.pool.warm(`${voice.id}|${req.speed}`);
  }

  stats(): TtsEngineStats {
    return { activeJobs: this.active, queuedJobs: 0, finishedJobs: this.finished };
  }

  async shutdown(): Promise<void> {
    this.pool.shutdown();
  }
}
