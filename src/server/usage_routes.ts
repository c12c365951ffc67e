/**
 * `GET /v1/usage` (issue 12 "`GET /v1/usage` for the key itself"): the calling key's own usage and
 * quotas. An admin key may read another key's with `?key=<id>`. Optional `?since=<ISO time>|<N>d|<N>h`
 * sets the start of the `breakdown` (default: the start of the current UTC month).
 *
 * Response (JSON, numbers in seconds / characters):
 * ```
 * {"key": {"id","name","admin","revoked_at"},
 *  "limits": {audioSecondsPerDay?, …},                       // the key's KeyLimits
 *  "day":   {"start", "requests", "audio_seconds_in", "chars_in", "audio_seconds_out"},
 *  "month": {…same…},
 *  "remaining": {"audioSecondsPerDay": 12.5, …},             // one entry per durable quota set
 *  "since": ISO, "breakdown": [{"service","model","provider","region", …totals}]}
 * ```
 * The instance's buffered usage is written first, so a request or session that ended here is counted.
 * Errors: 401 `auth_error` (missing/invalid key, or a non-admin key asking for another key), 404
 * `not_found` (unknown `?key`), 400 `invalid_request` (bad `since`) — SLNG error shape (refuse.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { ApiKeyStore, UsageTotals } from '../store/types.js';
import { utcDayStart, utcMonthStart } from '../store/types.js';
import type { UsageMeter } from '../store/usage.js';
import { renderError, VoxgateError } from '../util/errors.js';
import { authenticate } from './auth.js';
import { sendError } from './refuse.js';

/** Dependencies of {@link registerUsageRoute}. */
export interface UsageRouteDeps {
  keys: ApiKeyStore;
  meter?: UsageMeter;
  log: Logger;
  /**
   * Registry for the metering gauges: `voxgate_usage_rows{state="pending"|"written"|"dropped"}` (rows
   * buffered or being written; written since start; dropped while the store stayed unreachable) and
   * `voxgate_key_store_info{kind}` (1 for the store in use).
   */
  registry?: Registry;
}

/**
 * Parse a `since` value: an ISO-8601 time, or a relative `<N>d` / `<N>h` / `<N>m` (days, hours,
 * minutes before `now`). @returns the time, or null when `v` is neither.
 */
export function parseSince(v: string, now: Date = new Date()): Date | null {
  const rel = /^(\d+(?:\.\d+)?)([dhm])$/.exec(v.trim());
  if (rel) return new Date(now.getTime() - Number(rel[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[rel[2] as 'd' | 'h' | 'm']);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v.trim())) return null;
  const t = new Date(v.trim());
  return Number.isNaN(t.getTime()) ? null : t;
}

/** Totals as snake_case JSON (seconds rounded to ms). */
export function totalsJson(t: UsageTotals): Record<string, number> {
  return { requests: t.requests, audio_seconds_in: round3(t.audioSecondsIn), chars_in: t.charsIn, audio_seconds_out: round3(t.audioSecondsOut) };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Register `GET /v1/usage` on `app` (module docs). */
export function registerUsageRoute(app: FastifyInstance, deps: UsageRouteDeps): void {
  const { keys, meter } = deps;
  if (deps.registry) {
    const registers = [deps.registry];
    new Gauge({ name: 'voxgate_key_store_info', help: 'The key/usage store in use (sqlite or postgres)', labelNames: ['kind'] as const, registers }).set({ kind: keys.kind }, 1);
    if (meter) {
      new Gauge({
        name: 'voxgate_usage_rows',
        help: 'Usage metering rows: pending (buffered or being written), written and dropped since start',
        labelNames: ['state'] as const,
        registers,
        collect() {
          this.set({ state: 'pending' }, meter.pending());
          this.set({ state: 'written' }, meter.written);
          this.set({ state: 'dropped' }, meter.dropped);
        },
      });
    }
  }
  app.get('/v1/usage', async (req, reply) => {
    const url = new URL(req.url, 'http://x');
    const auth = await authenticate(req.headers, url, keys);
    if (!auth.ok) return sendError(reply, renderError('slng', auth.error));
    const asked = url.searchParams.get('key');
    let key = auth.key;
    if (asked && asked !== auth.key.id) {
      if (!auth.key.admin) return sendError(reply, renderError('slng', new VoxgateError('auth_error', "only an admin key may read another key's usage (?key=)")));
      const other = await keys.getKey(asked);
      if (!other) return sendError(reply, renderError('slng', new VoxgateError('not_found', `no key with id "${asked}"`)));
      key = other;
    }
    const now = new Date();
    const sinceRaw = url.searchParams.get('since');
    const since = sinceRaw ? parseSince(sinceRaw, now) : utcMonthStart(now);
    if (!since) return sendError(reply, renderError('slng', new VoxgateError('invalid_request', `since=${JSON.stringify(sinceRaw!.slice(0, 40))} is neither an ISO-8601 time nor a relative <N>d/<N>h/<N>m`)));
    await meter?.flush();
    const dayStart = utcDayStart(now);
    const monthStart = utcMonthStart(now);
    const [day, month, rows] = await Promise.all([keys.usageTotals(key.id, dayStart), keys.usageTotals(key.id, monthStart), keys.queryUsage({ keyId: key.id, since })]);
    const remaining: Record<string, number> = {};
    const l = key.limits ?? {};
    if (typeof l.audioSecondsPerDay === 'number') remaining.audioSecondsPerDay = round3(Math.max(0, l.audioSecondsPerDay - day.audioSecondsIn));
    if (typeof l.audioSecondsPerMonth === 'number') remaining.audioSecondsPerMonth = round3(Math.max(0, l.audioSecondsPerMonth - month.audioSecondsIn));
    if (typeof l.charsPerDay === 'number') remaining.charsPerDay = Math.max(0, l.charsPerDay - day.charsIn);
    if (typeof l.charsPerMonth === 'number') remaining.charsPerMonth = Math.max(0, l.charsPerMonth - month.charsIn);
    return {
      key: { id: key.id, name: key.name, admin: key.admin, revoked_at: key.revokedAt },
      limits: l,
      day: { start: dayStart.toISOString(), ...totalsJson(day) },
      month: { start: monthStart.toISOString(), ...totalsJson(month) },
      remaining,
      since: since.toISOString(),
      breakdown: rows.map((r) => ({ service: r.service, model: r.model, provider: r.provider, region: r.region, ...totalsJson(r) })),
    };
  });
}
