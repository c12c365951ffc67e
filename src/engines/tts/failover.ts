/**
 * TTS failover across backends (issue 10 part 2 "Failover", TTS: "switch only before a segment's
 * first audio byte; after it, end that segment with an error and speak the next one on the new
 * backend"). A {@link TtsEngine} over an ordered list of backends chosen per request by the front door.
 */
import type { BackendHealth } from '../health.js';
import { VoxgateError, toVoxgateError } from '../../util/errors.js';
import { Resampler } from '../../audio/resample.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsStream, TtsSynthesis, TtsSynthesisRequest } from './types.js';

/** One backend a TTS model may be served by. */
export interface TtsBackend {
  /** Engine instance id, e.g. `aura-eu`. */
  id: string;
  engine: TtsEngine;
  /** Region label, e.g. `eu-north-1`. */
  region: string;
  /** World part of {@link region}. */
  worldPart: string;
  /**
   * This backend's voice for each catalogue voice id (lower case) that it names differently (the
   * model's `backendVoices[<id>]`); voices not listed are sent as they are.
   */
  voices?: Readonly<Record<string, string>>;
}

/** The request as backend `b` must see it: its own id for the requested voice (TTS model `backendVoices`). */
function forBackend<R extends { voice: string }>(req: R, b: TtsBackend): R {
  const v = b.voices?.[req.voice.toLowerCase()];
  return v ? { ...req, voice: v.toLowerCase() } : req;
}

/** Options of {@link FailoverTtsEngine}. */
export interface TtsFailoverOptions {
  health: BackendHealth;
  /**
   * Called for every backend that failed with the next candidate (or null): before first audio the
   * segment moves to `to`; after first audio the segment ends with the error and the next segment starts on `to`.
   */
  onFailover?: (from: TtsBackend, to: TtsBackend | null, reason: VoxgateError) => void;
  /**
   * Per-attempt limit, ms, from the request to the backend's first audio chunk; past it the attempt
   * is aborted and counts as a retryable failure (LiveKit's `attemptTimeoutMs`, upstreams.md §2.1).
   * Default 10 000; `null` = no limit.
   */
  firstAudioTimeoutMs?: number | null;
}

/** Text that should produce audio: it has a letter or a digit (punctuation-only segments may legitimately be silent). */
function speakable(text: string): boolean {
  return /[\p{L}\p{N}]/u.test(text);
}

/** A TTS engine that synthesises each segment on the first available backend. */
export class FailoverTtsEngine implements TtsEngine {
  readonly id: string;
  /** The backend that produced the last segment's first audio. */
  lastBackend: TtsBackend | null = null;

  /**
   * With a single backend whose engine streams natively (e.g. Cartesia, issue 11), that engine's own
   * streaming session: the wrapper is transparent there, as {@link synthesize} is with one backend.
   * Absent with several backends: segments then go through {@link synthesize}, which fails over per segment.
   */
  readonly openStream?: (req: Omit<TtsSynthesisRequest, 'text'>) => TtsStream;

  /** @throws Error when `backends` is empty. */
  constructor(
    readonly backends: readonly TtsBackend[],
    private readonly o: TtsFailoverOptions,
  ) {
    if (backends.length === 0) throw new Error('FailoverTtsEngine needs at least one backend');
    this.id = backends[0]!.engine.id;
    const only = backends.length === 1 ? backends[0]! : null;
    if (only?.engine.openStream) {
      this.openStream = (req) => {
        this.lastBackend = only;
        return only.engine.openStream!(forBackend(req, only));
      };
    }
  }

  get version(): string {
    return this.backends[0]!.engine.version;
  }

  get capabilities(): TtsCapabilities {
    return this.backends[0]!.engine.capabilities;
  }

  async init(): Promise<void> {}

  /**
   * Synthesise on the first available backend (healthy, or due for a probe with no trial in flight:
   * {@link BackendHealth.begin}). Before the segment's first chunk a retryable failure — an error, no
   * first chunk within `firstAudioTimeoutMs`, or a "silent failure" (the backend ended a segment with
   * speakable text without any audio, LiveKit's rule, upstreams.md §2.1; not with a single backend,
   * where there is nowhere to go and the wrapper stays transparent) — moves the segment to the
   * next backend. After the first chunk a failure ends the segment with that error (re-speaking is
   * worse than a cut, upstreams.md §2.2) and, when retryable and another backend exists, marks the
   * backend failed so the next segment goes to the next backend. Non-retryable errors (auth, config) go to the caller unchanged
   * and do not mark the backend; a `rate_limit` (busy) moves on without a cool-down. Iteration throws
   * `backend_connection_failed` (`rate_limit` when the last backend tried was busy) when no backend
   * produced audio.
   */
  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const self = this;
    const health = this.o.health;
    const timeoutMs = this.o.firstAudioTimeoutMs === undefined ? 10_000 : this.o.firstAudioTimeoutMs;
    const first = this.backends[0]!.engine;
    const sampleRate = first.capabilities.voices.find((v) => v.id === req.voice)?.sampleRate ?? first.capabilities.voices[0]?.sampleRate ?? 16000;
    const peek = (tried: ReadonlySet<string>): TtsBackend | null => self.backends.find((b) => !tried.has(b.id) && health.isAvailable(b.id)) ?? null;
    async function* run(): AsyncGenerator<Int16Array> {
      if (self.backends.length === 1) {
        // Nowhere to fail over to: the wrapper is transparent — the engine's own errors (an embedded
        // engine's provider_error for one segment) pass through unchanged, no timeout is added and
        // the backend is never cooled down (its next segment has nowhere else to go).
        const only = self.backends[0]!;
        self.lastBackend = only;
        yield* only.engine.synthesize(forBackend(req, only), signal);
        return;
      }
      const tried = new Set<string>();
      let last: VoxgateError | null = null;
      for (;;) {
        // Healthy backends (and a due probe) first, then the cooling ones as a last resort (see the STT failover).
        const b = self.backends.find((x) => !tried.has(x.id) && health.begin(x.id)) ?? self.backends.find((x) => !tried.has(x.id));
        if (!b) break;
        tried.add(b.id);
        let started = false;
        let settled = false;
        let pendingNext: Promise<IteratorResult<Int16Array>> | null = null;
        const ac = new AbortController();
        const onAbort = (): void => ac.abort();
        if (signal?.aborted) ac.abort();
        else signal?.addEventListener('abort', onAbort, { once: true });
        const synth = b.engine.synthesize(forBackend(req, b), ac.signal);
        const it = synth[Symbol.asyncIterator]();
        // Every backend's audio reaches the caller at the synthesis's declared rate (the first backend's
        // voice rate): a backend producing another rate (Deepgram's 24 kHz next to a 16 kHz worker) is
        // resampled, never passed on at the wrong rate (which would play it pitch-shifted).
        const resampler = synth.sampleRate !== sampleRate ? new Resampler(synth.sampleRate, sampleRate) : null;
        try {
          for (;;) {
            let r: IteratorResult<Int16Array>;
            if (!started && timeoutMs !== null) {
              pendingNext = it.next();
              r = await firstChunk(pendingNext, timeoutMs, b.id);
            } else r = await it.next();
            pendingNext = null;
            if (r.done) break;
            if (!started) {
              started = true;
              settled = true;
              health.success(b.id);
              self.lastBackend = b;
            }
            const out = resampler ? resampler.process(r.value) : r.value;
            if (out.length > 0) yield out;
          }
          if (resampler) {
            const tail = resampler.flush();
            if (tail.length > 0) yield tail;
          }
          if (!started && speakable(req.text) && self.backends.length > 1) {
            throw new VoxgateError('provider_error', `${b.id}: the segment ended without audio`, { retryable: true });
          }
          if (!settled) health.success(b.id);
          settled = true;
          return;
        } catch (err) {
          const e = toVoxgateError(err);
          if (signal?.aborted || !e.retryable) throw err;
          settled = true;
          // A busy backend (`rate_limit`) is not broken: no cool-down. With a single backend a failure
          // after first audio is not recorded either: its next segment has nowhere else to go.
          if (e.code === 'rate_limit' || (started && self.backends.length === 1)) health.release(b.id);
          else health.failure(b.id, e.message);
          self.o.onFailover?.(b, peek(tried), e);
          if (started) throw e;
          last = e;
          if (pendingNext) {
            // the first chunk timed out (or its next() threw): abort the attempt's work, ignore its late answer
            ac.abort();
            pendingNext.catch(() => {});
          }
        } finally {
          signal?.removeEventListener('abort', onAbort);
          if (!settled) health.release(b.id);
          if (pendingNext === null) {
            // finished, failed, or stopped early (consumer break): make sure the engine's job is gone
            ac.abort();
            await it.return?.().catch(() => undefined);
          }
        }
      }
      if (last?.code === 'rate_limit') throw new VoxgateError('rate_limit', last.message);
      const reason = last ? last.message.replace(/^Failed to connect to backend: /, '') : 'no backend available (all cooling down after failures)';
      throw new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${reason}`, { retryable: false });
    }
    const it = run();
    return { sampleRate, [Symbol.asyncIterator]: () => it };
  }

  /** Prepare the first available backend (a hint; takes no probe slot). */
  prepare(req: Omit<TtsSynthesisRequest, 'text'>): void {
    const b = this.backends.find((x) => this.o.health.isAvailable(x.id));
    b?.engine.prepare?.(req);
  }

  stats(): TtsEngineStats {
    return this.backends[0]!.engine.stats();
  }

  async shutdown(): Promise<void> {}
}

/**
 * The attempt's first chunk, or a retryable `provider_error` after `ms` milliseconds without one.
 * @param next the pending `next()` of the attempt's iterator.
 */
async function firstChunk(next: Promise<IteratorResult<Int16Array>>, ms: number, id: string): Promise<IteratorResult<Int16Array>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new VoxgateError('provider_error', `${id}: no audio within ${ms} ms`, { retryable: true })), ms);
  });
  try {
    return await Promise.race([next, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
