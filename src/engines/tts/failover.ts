/**
 * TTS failover across backends (issue 10 part 2 "Failover", TTS: "switch only before a segment's
 * first audio byte; after it, end that segment with an error and speak the next one on the new
 * backend"). A {@link TtsEngine} over an ordered list of backends chosen per request by the front door.
 */
import type { BackendHealth } from '../health.js';
import { VoxgateError, toVoxgateError } from '../../util/errors.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest } from './types.js';

/** One backend a TTS model may be served by. */
export interface TtsBackend {
  /** Engine instance id, e.g. `aura-eu`. */
  id: string;
  engine: TtsEngine;
  /** Region label, e.g. `eu-north-1`. */
  region: string;
  /** World part of {@link region}. */
  worldPart: string;
}

/** Options of {@link FailoverTtsEngine}. */
export interface TtsFailoverOptions {
  health: BackendHealth;
  /** Called when a backend failed before first audio and the next is tried. */
  onFailover?: (from: TtsBackend, to: TtsBackend | null, reason: VoxgateError) => void;
}

/** A TTS engine that synthesises each segment on the first available backend. */
export class FailoverTtsEngine implements TtsEngine {
  readonly id: string;
  /** The backend that produced the last segment's first audio. */
  lastBackend: TtsBackend | null = null;

  /** @throws Error when `backends` is empty. */
  constructor(
    readonly backends: readonly TtsBackend[],
    private readonly o: TtsFailoverOptions,
  ) {
    if (backends.length === 0) throw new Error('FailoverTtsEngine needs at least one backend');
    this.id = backends[0]!.engine.id;
  }

  get version(): string {
    return this.backends[0]!.engine.version;
  }

  get capabilities(): TtsCapabilities {
    return this.backends[0]!.engine.capabilities;
  }

  async init(): Promise<void> {}

  /**
   * Synthesise on the first available backend; a retryable failure before the first chunk moves to
   * the next one. After the first chunk a failure ends the segment with that error.
   * Iteration throws `backend_connection_failed` when no backend produced audio.
   */
  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const self = this;
    const first = this.backends[0]!.engine;
    const sampleRate = first.capabilities.voices.find((v) => v.id === req.voice)?.sampleRate ?? first.capabilities.voices[0]?.sampleRate ?? 16000;
    async function* run(): AsyncGenerator<Int16Array> {
      const order = self.backends.filter((b) => self.o.health.isAvailable(b.id));
      let last: VoxgateError | null = null;
      let allBusy = true;
      for (let i = 0; i < order.length; i++) {
        const b = order[i]!;
        let started = false;
        try {
          for await (const chunk of b.engine.synthesize(req, signal)) {
            if (!started) {
              started = true;
              self.o.health.success(b.id);
              self.lastBackend = b;
            }
            yield chunk;
          }
          if (!started) self.o.health.success(b.id);
          return;
        } catch (err) {
          const e = toVoxgateError(err);
          if (started || !e.retryable || signal?.aborted) throw e;
          if (e.code !== 'rate_limit') {
            self.o.health.failure(b.id, e.message); // busy is not broken: no cool-down
            allBusy = false;
          }
          last = e;
          self.o.onFailover?.(b, order[i + 1] ?? null, e);
        }
      }
      if (last && allBusy) throw last; // every backend busy: the client gets rate_limit (retry later)
      const reason = last ? last.message.replace(/^Failed to connect to backend: /, '') : 'no backend available (all cooling down after failures)';
      throw new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${reason}`, { retryable: false });
    }
    const it = run();
    return { sampleRate, [Symbol.asyncIterator]: () => it };
  }

  prepare(req: Omit<TtsSynthesisRequest, 'text'>): void {
    const b = this.backends.find((x) => this.o.health.isAvailable(x.id));
    b?.engine.prepare?.(req);
  }

  stats(): TtsEngineStats {
    return this.backends[0]!.engine.stats();
  }

  async shutdown(): Promise<void> {}
}
