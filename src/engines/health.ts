/**
 * Backend health for routing and failover (issue 10 part 2 "Failover": "A failing backend is skipped
 * for a cool-down, then probed"). One tracker per gateway, keyed by engine instance id; shared by STT
 * and TTS backends.
 *
 * States: `healthy` → (failure) `cooling` until `coolDownMs` has passed → `probing` (one request
 * may try it; success → `healthy`, failure → `cooling` again with the cool-down doubled up to
 * `maxCoolDownMs`).
 *
 * Single trial while probing: callers that send a request take a slot with {@link BackendHealth.begin}
 * and settle it with {@link BackendHealth.success}, {@link BackendHealth.failure} or
 * {@link BackendHealth.release}. A `probing` backend hands out one slot at a time; while that trial is
 * in flight it is unavailable to other requests, so a burst after a cool-down sends one request to
 * the recovering backend, not the whole burst. A trial not settled within `probeLeaseMs` (a hung
 * attempt) no longer blocks the next one.
 */

/** Health state of one backend. */
export type BackendState = 'healthy' | 'cooling' | 'probing';

/** What `/v1/status` shows for one backend. */
export interface BackendHealthSnapshot {
  state: BackendState;
  /** Consecutive failures since the last success. */
  consecutiveFailures: number;
  /** Failures since start. */
  failures: number;
  /** Successful connects since start. */
  successes: number;
  /** Message of the last failure (no secrets: engines never put keys in messages). */
  lastError?: string;
  /** Milliseconds until a cooling backend may be probed (0 when not cooling). */
  coolDownLeftMs: number;
  /** Last successful connect latency, ms. */
  lastConnectMs?: number;
}

/** Options of {@link BackendHealth}. */
export interface BackendHealthOptions {
  /** First cool-down after a failure, ms. Default 5 000. */
  coolDownMs?: number;
  /** Longest cool-down after repeated failures, ms. Default 60 000. */
  maxCoolDownMs?: number;
  /** Clock, ms (tests). Default `performance.now`. */
  now?: () => number;
  /** How long one probe trial may hold the backend's single slot before another may start, ms. Default 30 000. */
  probeLeaseMs?: number;
  /**
   * Told of every local verdict (issue 12: backend health shared by all gateways, src/state/health_share.ts):
   * a failure with its cool-down (ms from now), or a success. Not called for {@link BackendHealth.applyRemote}.
   */
  onVerdict?: (v: HealthVerdict) => void;
}

/** A health verdict one gateway tells the others (src/state/health_share.ts). */
export type HealthVerdict =
  | { id: string; ok: false; coolDownMs: number; consecutive: number; message: string }
  | { id: string; ok: true };

interface Entry {
  consecutive: number;
  failures: number;
  successes: number;
  until: number;
  lastError?: string;
  lastConnectMs?: number;
  /** While probing: clock time (ms) until which a trial request holds the one slot; 0 = free. */
  probeUntil: number;
}

/** Per-backend health with cool-down and probing. */
export class BackendHealth {
  private readonly entries = new Map<string, Entry>();
  private readonly coolDownMs: number;
  private readonly maxCoolDownMs: number;
  private readonly now: () => number;
  private readonly probeLeaseMs: number;
  /** See {@link BackendHealthOptions.onVerdict}; may be set after construction. */
  onVerdict?: (v: HealthVerdict) => void;

  constructor(o: BackendHealthOptions = {}) {
    this.probeLeaseMs = o.probeLeaseMs ?? 30_000;
    this.coolDownMs = o.coolDownMs ?? 5_000;
    this.maxCoolDownMs = o.maxCoolDownMs ?? 60_000;
    this.now = o.now ?? (() => performance.now());
    this.onVerdict = o.onVerdict;
  }

  /**
   * Apply another gateway's verdict (issue 12): a failure cools `id` down here too, until at least
   * `coolDownMs` from now (a longer local cool-down is kept), with the larger failure streak; a success
   * makes it healthy. Counters of local attempts are not changed; {@link onVerdict} is not called.
   */
  applyRemote(v: HealthVerdict): void {
    const e = this.entry(v.id);
    if (v.ok) {
      e.consecutive = 0;
      e.until = 0;
      e.probeUntil = 0;
      return;
    }
    e.consecutive = Math.max(e.consecutive, v.consecutive, 1);
    e.lastError = v.message;
    e.until = Math.max(e.until, this.now() + v.coolDownMs);
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) {
      e = { consecutive: 0, failures: 0, successes: 0, until: 0, probeUntil: 0 };
      this.entries.set(id, e);
    }
    return e;
  }

  /** Current state of backend `id` (unknown backends are healthy). */
  state(id: string): BackendState {
    const e = this.entries.get(id);
    if (!e || e.consecutive === 0) return 'healthy';
    return this.now() < e.until ? 'cooling' : 'probing';
  }

  /**
   * True when a request may be sent to `id` now: healthy, or due for a probe with no trial in flight.
   * A query only; a caller about to send takes the slot with {@link begin}.
   */
  isAvailable(id: string): boolean {
    const s = this.state(id);
    if (s === 'healthy') return true;
    if (s === 'cooling') return false;
    return this.now() >= this.entries.get(id)!.probeUntil;
  }

  /**
   * Take the right to send one request to `id` now. Healthy → always true. Cooling → false. Probing →
   * true for one caller at a time (the trial), false while that trial is in flight (up to `probeLeaseMs`).
   * Settle a granted trial with {@link success}, {@link failure} or {@link release}.
   */
  begin(id: string): boolean {
    if (!this.isAvailable(id)) return false;
    if (this.state(id) === 'probing') this.entries.get(id)!.probeUntil = this.now() + this.probeLeaseMs;
    return true;
  }

  /**
   * The request taken with {@link begin} ended without a verdict on the backend's health (the client
   * went away, or the backend refused for the client's own reasons: auth, config): frees the probe slot.
   */
  release(id: string): void {
    const e = this.entries.get(id);
    if (e) e.probeUntil = 0;
  }

  /**
   * Record a failure (refused/timed-out/5xx connect, abnormal close, silence): starts or extends the cool-down.
   * @param message a description without secrets.
   */
  failure(id: string, message: string): void {
    const e = this.entry(id);
    e.consecutive++;
    e.failures++;
    e.lastError = message;
    e.probeUntil = 0;
    const coolDownMs = Math.min(this.maxCoolDownMs, this.coolDownMs * 2 ** (e.consecutive - 1));
    e.until = this.now() + coolDownMs;
    this.onVerdict?.({ id, ok: false, coolDownMs, consecutive: e.consecutive, message });
  }

  /** Record a successful connect taking `connectMs` milliseconds: the backend is healthy again. */
  success(id: string, connectMs?: number): void {
    const e = this.entry(id);
    if (e.consecutive > 0) this.onVerdict?.({ id, ok: true });
    e.consecutive = 0;
    e.successes++;
    e.until = 0;
    e.probeUntil = 0;
    if (connectMs !== undefined) e.lastConnectMs = connectMs;
  }

  /** Snapshot of one backend for `/v1/status`. */
  snapshot(id: string): BackendHealthSnapshot {
    const e = this.entries.get(id);
    const state = this.state(id);
    return {
      state,
      consecutiveFailures: e?.consecutive ?? 0,
      failures: e?.failures ?? 0,
      successes: e?.successes ?? 0,
      lastError: e?.lastError,
      coolDownLeftMs: state === 'cooling' ? Math.max(0, Math.round(e!.until - this.now())) : 0,
      lastConnectMs: e?.lastConnectMs,
    };
  }
}
