/**
 * Admission of a request or session at the front door, after authentication and before any backend
 * is selected or dialled (issue 12 "Quotas and usage metering": "Exceeding a quota gets the dialect's
 * `rate_limit` / HTTP 429 before any backend is dialled"). Every STT and TTS route, WebSocket and
 * HTTP, calls {@link admitQuota} right after `authenticate`; a refusal goes through the route's one
 * refusal path (refuse.ts) like any other catalogue error.
 *
 * Durable quotas (this file): `audioSecondsPerDay` / `audioSecondsPerMonth` (STT audio in) and
 * `charsPerDay` / `charsPerMonth` (TTS characters in), per UTC day and calendar month, from the key's
 * {@link KeyLimits}, against the usage metered by {@link UsageMeter}. Live limits (concurrent sessions,
 * requests per minute) are checked next to it (shared state, issue 12 Redis part).
 *
 * Also here: {@link meterUsage}, the one way routes record what a finished request/session used.
 *
 * Live limits (issue 12, Redis part; {@link admitLive}): `maxSessions` (leases held until the session
 * ends, shared by every gateway on the Redis) and `rpm`, from src/state/live.ts; in memory without
 * Redis and while it is down.
 */
import type { Logger } from 'pino';
import { engineRegion, engineType, type VoxgateConfig } from '../config/config.js';
import type { KeyInfo, KeyLimits } from '../store/keys.js';
import type { UsageRecord } from '../store/types.js';
import type { PeriodTotals, UsageMeter } from '../store/usage.js';
import { VoxgateError } from '../util/errors.js';
import type { Lease, LiveState, SessionMeta } from '../state/live.js';

/** What {@link admitQuota} checks. */
export interface QuotaRequest {
  /** The authenticated key (its `limits`). */
  key: KeyInfo;
  /** `stt` checks audio seconds, `tts` characters. */
  service: 'stt' | 'tts';
  /** The gateway's usage meter; absent = no quotas enforced. */
  meter?: UsageMeter;
  /**
   * TTS over HTTP: characters this request brings (known once the body is read). The request is
   * refused when it would take the key past its quota; without it, only a quota already used up refuses.
   */
  chars?: number;
  log?: Logger;
}

/** A quota of {@link KeyLimits} and where its usage is read. */
const QUOTAS: { field: keyof KeyLimits; service: 'stt' | 'tts'; period: 'day' | 'month'; metric: 'audioSecondsIn' | 'charsIn'; unit: string }[] = [
  { field: 'audioSecondsPerDay', service: 'stt', period: 'day', metric: 'audioSecondsIn', unit: 'audio seconds' },
  { field: 'audioSecondsPerMonth', service: 'stt', period: 'month', metric: 'audioSecondsIn', unit: 'audio seconds' },
  { field: 'charsPerDay', service: 'tts', period: 'day', metric: 'charsIn', unit: 'characters' },
  { field: 'charsPerMonth', service: 'tts', period: 'month', metric: 'charsIn', unit: 'characters' },
];

/**
 * The durable-quota admission check (module docs). Reads the key's usage only when it has a quota for
 * this service (no cost otherwise).
 * @returns null when admitted; else a `rate_limit` error (HTTP 429, the dialect's `rate_limit`) whose
 *   message names the quota, the usage and when it resets. Never throws: when usage cannot be read
 *   (database down) the request is admitted and a warning logged (fail open: metering resumes later).
 */
export async function admitQuota(q: QuotaRequest): Promise<VoxgateError | null> {
  const limits = q.key.limits ?? {};
  const mine = QUOTAS.filter((x) => x.service === q.service && typeof limits[x.field] === 'number');
  if (!mine.length || !q.meter) return null;
  let t: PeriodTotals;
  try {
    t = await q.meter.totals(q.key.id);
  } catch (err) {
    q.log?.warn({ err: (err as Error).message, key_id: q.key.id }, 'quota check skipped: usage could not be read');
    return null;
  }
  const extra = q.service === 'tts' ? Math.max(0, q.chars ?? 0) : 0;
  for (const x of mine) {
    const limit = limits[x.field]!;
    const used = t[x.period][x.metric];
    const over = extra > 0 ? used + extra > limit : used >= limit;
    if (!over) continue;
    const resets = x.period === 'day' ? new Date(t.dayStart.getTime() + 86_400_000) : new Date(Date.UTC(t.monthStart.getUTCFullYear(), t.monthStart.getUTCMonth() + 1, 1));
    const usedS = x.metric === 'charsIn' ? String(Math.round(used)) : used.toFixed(1);
    const wants = extra > 0 ? ` (this request: ${extra} more)` : '';
    return new VoxgateError(
      'rate_limit',
      `quota exceeded: this key used ${usedS} of its ${limit} ${x.unit} per UTC ${x.period} (${x.field})${wants}; it resets at ${resets.toISOString()}`,
      { retryable: false },
    );
  }
  return null;
}

/** What a finished request/session used (see {@link meterUsage}). */
export interface UsageOf {
  key: KeyInfo | string;
  service: 'stt' | 'tts';
  transport: 'ws' | 'http';
  model: string;
  /** Engine instance id that served (`Selection.backendId()`). */
  backend: string;
  audioSecondsIn?: number;
  charsIn?: number;
  audioSecondsOut?: number;
}

/**
 * Record one finished request/session in the meter (buffered; written in batches off the request
 * path): provider = the backend's engine type, region = its region (config). No-op without a meter.
 */
export function meterUsage(meter: UsageMeter | undefined, config: Pick<VoxgateConfig, 'engines' | 'gateway'>, u: UsageOf): void {
  if (!meter) return;
  const rec: UsageRecord = {
    keyId: typeof u.key === 'string' ? u.key : u.key.id,
    at: new Date(),
    service: u.service,
    transport: u.transport,
    model: u.model,
    // A registered worker (`worker:<id>`, issue 12) is relayed over the SLNG protocol.
    provider: u.backend.startsWith('worker:') ? 'slng' : engineType(config, u.backend),
    backend: u.backend,
    region: engineRegion(config, u.backend),
    requests: 1,
    audioSecondsIn: u.audioSecondsIn ?? 0,
    charsIn: u.charsIn ?? 0,
    audioSecondsOut: u.audioSecondsOut ?? 0,
  };
  meter.record(rec);
}

/** What a route passes to {@link admitLive}. */
export interface AdmissionRequest {
  /** The authenticated key. */
  key: KeyInfo;
  /** Registry identity of the session/request. */
  session: Omit<SessionMeta, 'keyId'>;
}

/**
 * Check the key's live limits and take its session slot: first `limits.rpm` (one request counted),
 * then `limits.maxSessions` (a lease held until {@link Lease.release}). Every admitted session is
 * registered in the session registry.
 * @returns the lease; the caller releases it exactly once when the session or request ends (bind it to
 *   the selection's `end()`, which every end path calls).
 * @throws VoxgateError `rate_limit` (HTTP 429, `Retry-After`) naming the limit that was hit; never
 *   another error (a failing Redis falls back to in-memory limits).
 */
export async function admitLive(state: LiveState, req: AdmissionRequest): Promise<Lease> {
  const { key } = req;
  const limits = key.limits ?? {};
  if (limits.rpm !== undefined && limits.rpm > 0) {
    const v = await state.consumeRequest(key.id, limits.rpm);
    if (!v.ok) throw new VoxgateError('rate_limit', `API key ${key.id} is over its limit of ${limits.rpm} requests per minute; retry in ${Math.ceil(v.retryAfterMs / 1000)} s`, { retryable: false });
  }
  const lease = await state.acquire({ ...req.session, keyId: key.id }, limits.maxSessions);
  if (!lease) throw new VoxgateError('rate_limit', `API key ${key.id} already has its maximum of ${limits.maxSessions} concurrent sessions open; close one or retry later`, { retryable: false });
  return lease;
}

/**
 * A selection whose `end()` also releases `lease` (both idempotent, so the lease is released exactly
 * once, on whichever end path runs first).
 */
export function bindLease<S extends { end(): void }>(sel: S, lease: Pick<Lease, 'release'>): S {
  const end = sel.end;
  return Object.assign(sel, {
    end: () => {
      try {
        end();
      } finally {
        lease.release();
      }
    },
  });
}
