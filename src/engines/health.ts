/**
 * Backend health for routing and failover (issue 10 part 2 "Failover": "A failing backend is skipped
 * for a cool-down, then probed"). One tracker per gateway, keyed by engine instance id; shared by STT
 * and TTS backends.
 *
 * States: `healthy` → (failure) `cooling` until `coolDownMs` has passed → `probing` (the next request
 * may try it; success → `healthy`, failure → `cooling` again with the cool-down doubled up to
 * `maxCoolDownMs`).
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
}

interface Entry {
  consecutive: number;
  failures: number;
  successes: number;
  until: number;
  lastError?: string;
  lastConnectMs?: number;
}

/** Per-backend health with cool-down and probing. */
export class BackendHealth {
  private readonly entries = new Map<string, Entry>();
  private readonly coolDownMs: number;
  private readonly maxCoolDownMs: number;
  private readonly now: () => number;

  constructor(o: BackendHealthOptions = {}) {
    this.coolDownMs = o.coolDownMs ?? 5_000;
    this.maxCoolDownMs = o.maxCoolDownMs ?? 60_000;
    this.now = o.now ?? (() => performance.now());
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) {
      e = { consecutive: 0, failures: 0, successes: 0, until: 0 };
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

  /** True when a request may be sent to `id` now (healthy or due for a probe). */
  isAvailable(id: string): boolean {
    return this.state(id) !== 'cooling';
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
    e.until = this.now() + Math.min(this.maxCoolDownMs, this.coolDownMs * 2 ** (e.consecutive - 1));
  }

  /** Record a successful connect taking `connectMs` milliseconds: the backend is healthy again. */
  success(id: string, connectMs?: number): void {
    const e = this.entry(id);
    e.consecutive = 0;
    e.successes++;
    e.until = 0;
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
