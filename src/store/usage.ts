/**
 * Usage metering of one gateway instance (issue 12 "Quotas and usage metering"; shared/spec/upstreams.md
 * §4: "append-only rows batched from an in-memory buffer"; "metering must be readable at admission time").
 *
 * - {@link UsageMeter.record} is called once per request/session, when it ends; it only appends to an
 *   in-memory buffer — never a database round trip on the request or audio path.
 * - Every `flushMs` (and at {@link UsageMeter.close}) the buffer is written in one batch
 *   (`ApiKeyStore.recordUsage`). A failed write keeps the rows for the next flush (bounded: past
 *   {@link MAX_PENDING_ROWS} the oldest are dropped and counted in {@link UsageMeter.dropped}).
 * - {@link UsageMeter.totals} gives a key's usage of the current UTC day and calendar month for quota
 *   checks: the database sums (reused for `quotaCacheMs`) plus this instance's rows not yet written.
 *   Other instances' usage is seen once they flushed it and this instance's cached sums expired, i.e.
 *   within `flushMs + quotaCacheMs` (defaults 1 s + 1 s).
 */
import type { Logger } from 'pino';
import { utcDayStart, utcMonthStart, ZERO_TOTALS, type ApiKeyStore, type UsageRecord, type UsageTotals } from './types.js';

/** Most unwritten rows kept while the database is unreachable. */
export const MAX_PENDING_ROWS = 100_000;
/** A flush starts early when this many rows are buffered. */
const FLUSH_BATCH_ROWS = 500;

/** A key's usage of the current UTC day and month (each includes unwritten local rows). */
export interface PeriodTotals {
  day: UsageTotals;
  month: UsageTotals;
  /** Start of the UTC day / month these cover. */
  dayStart: Date;
  monthStart: Date;
}

/** Options of {@link UsageMeter}. */
export interface UsageMeterOptions {
  /** Flush period, ms (default 1000). */
  flushMs?: number;
  /** How long database sums are reused for quota checks, ms (default 1000; 0 = always read). */
  quotaCacheMs?: number;
  log?: Logger;
  /** Clock (tests). */
  now?: () => Date;
}

function add(a: UsageTotals, r: UsageRecord): UsageTotals {
  return { requests: a.requests + r.requests, audioSecondsIn: a.audioSecondsIn + r.audioSecondsIn, charsIn: a.charsIn + r.charsIn, audioSecondsOut: a.audioSecondsOut + r.audioSecondsOut };
}

/** See module docs. */
export class UsageMeter {
  private buffer: UsageRecord[] = [];
  /** Rows handed to the store and not yet confirmed written. */
  private inFlight: UsageRecord[] = [];
  private flushing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly cache = new Map<string, { at: number; dayStart: number; day: UsageTotals; month: UsageTotals }>();
  private readonly flushMs: number;
  private readonly quotaCacheMs: number;
  private readonly now: () => Date;
  private closed = false;
  /** Rows dropped because the database stayed unreachable (see {@link MAX_PENDING_ROWS}). */
  dropped = 0;
  /** Rows written so far. */
  written = 0;

  constructor(
    readonly store: ApiKeyStore,
    private readonly o: UsageMeterOptions = {},
  ) {
    this.flushMs = o.flushMs ?? 1000;
    this.quotaCacheMs = o.quotaCacheMs ?? 1000;
    this.now = o.now ?? (() => new Date());
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** Buffer one finished request/session (see module docs). Rows without usage and requests are ignored. Never throws. */
  record(r: UsageRecord): void {
    if (this.closed) return;
    if (!(r.requests > 0 || r.audioSecondsIn > 0 || r.charsIn > 0 || r.audioSecondsOut > 0)) return;
    this.buffer.push({ ...r, audioSecondsIn: finite(r.audioSecondsIn), charsIn: finite(r.charsIn), audioSecondsOut: finite(r.audioSecondsOut) });
    if (this.buffer.length >= FLUSH_BATCH_ROWS) void this.flush();
  }

  /** Rows buffered or being written. */
  pending(): number {
    return this.buffer.length + this.inFlight.length;
  }

  /**
   * Write the buffered rows now (one batch). Concurrent calls share the flush under way and then flush
   * what arrived meanwhile. Never rejects: a failure is logged and the rows are kept.
   */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.buffer.length) return;
    const batch = this.buffer;
    this.buffer = [];
    this.inFlight = batch;
    this.flushing = (async () => {
      try {
        await this.store.recordUsage(batch);
        this.written += batch.length;
        for (const r of batch) this.cache.delete(r.keyId); // the database sums now include them
      } catch (err) {
        this.o.log?.warn({ err: (err as Error).message, rows: batch.length }, 'usage rows not written; kept for the next flush');
        this.buffer = [...batch, ...this.buffer];
        const over = this.buffer.length - MAX_PENDING_ROWS;
        if (over > 0) {
          this.buffer.splice(0, over);
          this.dropped += over;
        }
      } finally {
        this.inFlight = [];
        this.flushing = null;
      }
    })();
    await this.flushing;
  }

  /**
   * A key's usage this UTC day and month: database sums (cached `quotaCacheMs`) + this instance's
   * unwritten rows. @throws when the database cannot be read (the caller decides to fail open or closed).
   */
  async totals(keyId: string): Promise<PeriodTotals> {
    const now = this.now();
    const dayStart = utcDayStart(now);
    const monthStart = utcMonthStart(now);
    let c = this.cache.get(keyId);
    if (!c || c.dayStart !== dayStart.getTime() || now.getTime() - c.at >= this.quotaCacheMs) {
      const [day, month] = await Promise.all([this.store.usageTotals(keyId, dayStart), this.store.usageTotals(keyId, monthStart)]);
      c = { at: now.getTime(), dayStart: dayStart.getTime(), day, month };
      if (this.quotaCacheMs > 0) this.cache.set(keyId, c);
    }
    let day = c.day;
    let month = c.month;
    for (const r of [...this.inFlight, ...this.buffer]) {
      if (r.keyId !== keyId) continue;
      if (r.at >= monthStart) month = add(month, r);
      if (r.at >= dayStart) day = add(day, r);
    }
    return { day, month, dayStart, monthStart };
  }

  /** Stop the timer and write what is left (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }
}

function finite(x: number): number {
  return Number.isFinite(x) && x > 0 ? x : 0;
}

export { ZERO_TOTALS };
