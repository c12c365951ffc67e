/**
 * STT failover across backends (issue 10 part 2 "Failover"): an {@link SttEngine} over an ordered
 * list of backends (engine instances with their region), chosen per request by the front door.
 *
 * `start()` tries the backends in order, skipping those cooling down after a failure
 * ({@link BackendHealth}); a retryable failure (refused, timed out, 5xx, abnormal close) moves to the
 * next one; a non-retryable one (the backend's auth/config refusal) goes to the client. A `rate_limit`
 * (backend busy) also moves on but starts no cool-down, and when every backend was busy the client gets
 * that `rate_limit` (HTTP 429 / close 1013: retry later). When none is
 * left the start rejects with `backend_connection_failed` and the message
 * `Failed to connect to backend: <reason>` (seed 001 shape, protocols.md §1.4).
 *
 * Mid-stream failover (replay of the audio since the last final to the next backend) builds on this
 * class; see {@link FailoverSttEngine.start}.
 */
import type { RequestContext } from '../context.js';
import type { BackendHealth } from '../health.js';
import { VoxgateError, toVoxgateError } from '../../util/errors.js';
import type { SttCapabilities, SttEngine, SttEngineStats, SttStream, SttStreamConfig } from './types.js';

/** One backend a model may be served by: an engine instance and where it runs. */
export interface SttBackend {
  /** Engine instance id (key of `engines` in the config), e.g. `worker-eu`. */
  id: string;
  engine: SttEngine;
  /** Region label, e.g. `eu-north-1`. */
  region: string;
  /** World part of {@link region}, e.g. `eu`. */
  worldPart: string;
}

/** Options of {@link FailoverSttEngine}. */
export interface FailoverOptions {
  /** The gateway's shared health tracker. */
  health: BackendHealth;
  /** Called when a backend failed and the next one is tried (metrics, logs). */
  onFailover?: (from: SttBackend, to: SttBackend | null, reason: VoxgateError) => void;
  /** Called after each successful connect with its latency in ms (metrics). */
  onConnect?: (backend: SttBackend, connectMs: number) => void;
}

/** An engine that starts each stream on the first backend that accepts it. */
export class FailoverSttEngine implements SttEngine {
  readonly id: string;
  readonly capabilities: SttCapabilities;
  /** The backend the last successful `start()` used (for session metadata and tests). */
  lastBackend: SttBackend | null = null;

  /**
   * @param backends candidates in preference order (non-empty); the first one's capabilities are the model's.
   * @throws Error when `backends` is empty.
   */
  constructor(
    readonly backends: readonly SttBackend[],
    private readonly o: FailoverOptions,
  ) {
    if (backends.length === 0) throw new Error('FailoverSttEngine needs at least one backend');
    this.id = backends[0]!.engine.id;
    this.capabilities = backends[0]!.engine.capabilities;
  }

  /** Version of the first backend's engine, when it reports one. */
  get version(): string | undefined {
    return (this.backends[0]!.engine as SttEngine & { version?: string }).version;
  }

  /** Backends are initialised by the registry; nothing to do. */
  async init(): Promise<void> {}

  /**
   * Open a stream on the first available backend.
   * @throws VoxgateError the backend's non-retryable error (auth/config), or `backend_connection_failed`
   *   when every backend failed or is cooling down.
   */
  async start(config: SttStreamConfig, ctx?: RequestContext): Promise<SttStream> {
    const order = [...this.backends.filter((b) => this.o.health.isAvailable(b.id))];
    let last: VoxgateError | null = null;
    let allBusy = true;
    for (let i = 0; i < order.length; i++) {
      const b = order[i]!;
      if (ctx?.signal?.aborted) throw new VoxgateError('backend_connection_failed', 'Failed to connect to backend: request aborted', { retryable: false });
      const t0 = performance.now();
      try {
        const stream = await b.engine.start(config, ctx);
        const ms = performance.now() - t0;
        this.o.health.success(b.id, ms);
        this.o.onConnect?.(b, ms);
        this.lastBackend = b;
        return stream;
      } catch (err) {
        const e = toVoxgateError(err);
        if (!e.retryable) throw e;
        // A busy backend (`rate_limit`: all its streams in use) is not broken: no cool-down.
        if (e.code !== 'rate_limit') {
          this.o.health.failure(b.id, e.message);
          allBusy = false;
        }
        last = e;
        this.o.onFailover?.(b, order[i + 1] ?? null, e);
      }
    }
    // Every backend was merely busy: the client gets `rate_limit` (retry later), not a connection failure.
    if (last && allBusy) throw last;
    const reason = last ? last.message.replace(/^Failed to connect to backend: /, '') : 'no backend available (all cooling down after failures)';
    throw new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${reason}`, { retryable: false });
  }

  /** Stats of the first backend. */
  stats(): SttEngineStats {
    return this.backends[0]!.engine.stats();
  }

  /** Free streams over the available backends; `Number.MAX_SAFE_INTEGER` when one of them reports no cap. */
  freeStreams(): number {
    let total = 0;
    for (const b of this.backends) {
      if (!this.o.health.isAvailable(b.id)) continue;
      const f = b.engine.freeStreams?.();
      if (f === undefined) return Number.MAX_SAFE_INTEGER;
      total += f;
    }
    return total;
  }

  /** Backends are shut down by their owner (the registry); nothing to do. */
  async shutdown(): Promise<void> {}
}
