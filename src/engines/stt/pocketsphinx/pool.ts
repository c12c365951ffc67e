/**
 * A pool of warm PocketSphinx decoders. `ps_init` takes 0.25–0.3 s and about 62 MB (shared LM), so
 * streams take an initialised decoder from the pool instead of creating one.
 *
 * Accounting: a decoder is *idle* (ready in the pool), *busy* (handed out by {@link DecoderPool.acquire}
 * and not yet released) or *creating* (`ps_init` in flight). `busy + idle + creating` never exceeds
 * `maxDecoders`. An acquire that would need a decoder beyond the cap rejects with `code: 'rate_limit'`.
 *
 * Ahead of demand, off the event loop (issue 14 item 6): `ps_init` runs on the libuv pool; after
 * every acquire the pool refills to `minIdle` in the background. `maxConcurrentCreates` can bound
 * the `ps_init` calls in flight; by default it does not. Measured in bursts of 10 session starts
 * (bench/hardening.ts, shared 2-core box, load 3–6): 2 at a time → `ready` max 4.1–8.8 s, event-loop
 * lag p99 55–57 ms; 4 → 4.4 s, 50 ms; unbounded → 2.6–3.5 s, 65–84 ms.
 *
 * Returning memory (issue 14 item 7): after `idleShrinkMs` without an acquire or release, idle
 * decoders beyond `minIdle` are freed, and once freed decoders' memory is gone from the heap
 * `malloc_trim` gives it back to the system ({@link trimNativeHeap}).
 */
import { VoxgateError } from '../../../util/errors.js';
import { PsDecoder, trimNativeHeap, type SharedModel } from './native.js';

/** Pool sizing. */
export interface DecoderPoolOptions {
  /** Warm decoders kept ready for new streams (default 1). */
  minIdle: number;
  /** Hard cap on decoders in existence: busy + idle + creating (default 8). */
  maxDecoders: number;
  /** Quiet time (ms, no acquire/release) after which idle decoders beyond `minIdle` are freed and the heap trimmed (default 15000). */
  idleShrinkMs: number;
  /** `ps_init` calls in flight at once (default: `maxDecoders`, i.e. no extra bound). */
  maxConcurrentCreates: number;
  /** Returns freed heap memory to the system; default {@link trimNativeHeap} (tests count calls). */
  trim: () => Promise<unknown>;
}

const DEFAULTS: Omit<DecoderPoolOptions, 'maxConcurrentCreates'> = { minIdle: 1, maxDecoders: 8, idleShrinkMs: 15_000, trim: trimNativeHeap };

/** Frees after which the heap is trimmed even without a quiet period. */
const TRIM_EVERY_FREES = 4;

interface Waiter {
  resolve(d: PsDecoder): void;
  reject(err: unknown): void;
}

/** Hands out decoders, one stream each, and keeps `minIdle` of them warm. */
export class DecoderPool {
  private readonly model: SharedModel;
  private readonly opts: DecoderPoolOptions;
  private readonly idle: PsDecoder[] = [];
  private readonly busy = new Set<PsDecoder>();
  /** Acquires waiting for an in-flight creation, in arrival order. */
  private readonly waiters: Waiter[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  /** `ps_init` calls running, and creations waiting for a slot. */
  private creating = 0;
  private readonly createQueue: (() => void)[] = [];
  /** Frees since the last trim (their promises settle when the native memory is gone). */
  private pendingFrees: Promise<void>[] = [];
  private shrinkTimer: NodeJS.Timeout | null = null;
  private trims = 0;

  /**
   * @param model the shared model every decoder is created from; the pool does not free it.
   * @param opts sizing. `minIdle` is clamped to [0, maxDecoders].
   * @throws RangeError when `maxDecoders < 1` or a value is not an integer.
   */
  constructor(model: SharedModel, opts: Partial<DecoderPoolOptions> = {}) {
    const base = { ...DEFAULTS, ...opts };
    const merged: DecoderPoolOptions = { ...base, maxConcurrentCreates: base.maxConcurrentCreates ?? base.maxDecoders };
    if (
      !Number.isInteger(merged.minIdle) ||
      !Number.isInteger(merged.maxDecoders) ||
      merged.maxDecoders < 1 ||
      !Number.isInteger(merged.maxConcurrentCreates) ||
      merged.maxConcurrentCreates < 1 ||
      !(merged.idleShrinkMs >= 0)
    ) {
      throw new RangeError(`invalid decoder pool options ${JSON.stringify(opts)}`);
    }
    this.model = model;
    this.opts = { ...merged, minIdle: Math.min(Math.max(merged.minIdle, 0), merged.maxDecoders) };
  }

  /**
   * Creates decoders until `minIdle` are idle or being created, then waits for those creations.
   * @throws Error (rejection) with the first creation failure.
   */
  async warm(): Promise<void> {
    this.replenish();
    const results = await Promise.allSettled([...this.inFlight]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * A decoder for a new stream: an idle one (after `resetForNewStream()`), else a decoder whose
   * creation is already in flight, else a newly created one. Afterwards the pool replenishes to
   * `minIdle` in the background. Hand it back with {@link release}.
   * @throws VoxgateError with `code: 'rate_limit'` (rejection) when `busy + creating >= maxDecoders`.
   *   Error (rejection) when the pool is shut down or `ps_init` fails.
   */
  async acquire(): Promise<PsDecoder> {
    this.assertOpen();
    this.touch();
    for (let d = this.idle.pop(); d; d = this.idle.pop()) {
      this.busy.add(d);
      try {
        await d.resetForNewStream();
      } catch {
        this.busy.delete(d);
        this.free(d);
        this.assertOpen();
        continue;
      }
      this.assertOpen(); // shutdown() during the reset has freed it
      this.replenish();
      return d;
    }
    if (this.unclaimed() === 0) {
      if (this.busy.size + this.inFlight.size >= this.opts.maxDecoders) {
        throw new VoxgateError('rate_limit', `all ${this.opts.maxDecoders} speech decoders are busy`);
      }
      this.spawn();
    }
    const d = await new Promise<PsDecoder>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.replenish();
    return d;
  }

  /**
   * Returns a decoder obtained from {@link acquire}. It becomes idle if fewer than
   * `max(minIdle, 2)` are idle, and is freed otherwise. A second release of the same decoder, or a
   * decoder not from this pool, is ignored.
   */
  release(d: PsDecoder): void {
    if (!this.busy.delete(d)) return;
    if (!this.closed && this.idle.length < Math.max(this.opts.minIdle, 2)) this.idle.push(d);
    else this.free(d);
    this.touch();
  }

  /**
   * How many {@link acquire} calls would succeed now without a `rate_limit` rejection: idle decoders,
   * creations no acquire has claimed yet, and room to create more under `maxDecoders`. 0 once shut down.
   */
  available(): number {
    if (this.closed) return 0;
    const room = this.opts.maxDecoders - this.busy.size - this.idle.length - this.inFlight.size;
    return this.idle.length + Math.max(0, this.unclaimed()) + Math.max(0, room);
  }

  /** Counts for `/v1/status` and metrics, plus whether decoders share one language model. */
  stats(): { idle: number; busy: number; creating: number; sharedLm: boolean } {
    return { idle: this.idle.length, busy: this.busy.size, creating: this.inFlight.size, sharedLm: this.model.sharedLm };
  }

  /** Heap trims run so far (after freeing decoders). */
  get trimCount(): number {
    return this.trims;
  }

  /**
   * Frees idle decoders beyond `minIdle`, then (when any decoder was freed since the last trim)
   * waits for their native memory to go and trims the heap. Runs by itself after `idleShrinkMs` of
   * quiet; public for tests and shutdown paths.
   * @returns resolves when done; never rejects.
   */
  async shrink(): Promise<void> {
    if (this.shrinkTimer) clearTimeout(this.shrinkTimer);
    this.shrinkTimer = null;
    while (!this.closed && this.idle.length > this.opts.minIdle) this.free(this.idle.shift()!);
    await this.trimFreed();
  }

  /** Once the decoders freed so far are gone, trim the heap (nothing to do when none was freed). */
  private async trimFreed(): Promise<void> {
    if (this.pendingFrees.length === 0) return;
    const frees = this.pendingFrees.splice(0);
    await Promise.all(frees);
    this.trims++;
    await this.opts.trim().catch(() => undefined);
  }

  /** Activity: (re)start the quiet-period timer. */
  private touch(): void {
    if (this.closed || this.opts.idleShrinkMs === 0) return;
    if (this.shrinkTimer) clearTimeout(this.shrinkTimer);
    this.shrinkTimer = setTimeout(() => void this.shrink(), this.opts.idleShrinkMs);
    this.shrinkTimer.unref();
  }

  private free(d: PsDecoder): void {
    this.pendingFrees.push(d.free());
    // Under steady churn the quiet period never comes: trim every few frees as well.
    if (this.pendingFrees.length >= TRIM_EVERY_FREES) void this.trimFreed();
  }

  /**
   * Frees idle and busy decoders and rejects pending acquires. The promise settles once in-flight
   * creations have finished and their decoders are freed. Later {@link acquire} calls reject. Idempotent.
   */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.shrinkTimer) clearTimeout(this.shrinkTimer);
    this.shrinkTimer = null;
    for (const d of this.idle.splice(0)) d.free();
    for (const d of this.busy) d.free();
    this.busy.clear();
    for (const w of this.waiters.splice(0)) w.reject(new Error('decoder pool is shut down'));
    await Promise.allSettled([...this.inFlight]);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('decoder pool is shut down');
  }

  /** Waits for one of `maxConcurrentCreates` creation slots; resolves with its release. */
  private createSlot(): Promise<() => void> {
    const done = (): void => {
      const next = this.createQueue.shift();
      if (next) next();
      else this.creating--;
    };
    if (this.creating < this.opts.maxConcurrentCreates) {
      this.creating++;
      return Promise.resolve(done);
    }
    return new Promise((resolve) => this.createQueue.push(() => resolve(done)));
  }

  /** In-flight creations that no waiting acquire has claimed yet. */
  private unclaimed(): number {
    return this.inFlight.size - this.waiters.length;
  }

  private replenish(): void {
    while (
      !this.closed &&
      this.idle.length + this.unclaimed() < this.opts.minIdle &&
      this.busy.size + this.idle.length + this.inFlight.size < this.opts.maxDecoders
    ) {
      this.spawn();
    }
  }

  /** Starts one creation; its decoder goes to the oldest waiter, else to the idle list. */
  private spawn(): void {
    const job: Promise<void> = this.createSlot().then(
      (done) => PsDecoder.create(this.model).finally(done),
    ).then(
      (d) => {
        this.inFlight.delete(job);
        const waiter = this.waiters.shift();
        if (this.closed) d.free();
        else if (waiter) {
          this.busy.add(d);
          waiter.resolve(d);
        } else this.idle.push(d);
      },
      (err: unknown) => {
        this.inFlight.delete(job);
        this.waiters.shift()?.reject(err);
        throw err;
      },
    );
    this.inFlight.add(job);
    job.catch(() => undefined);
  }
}
