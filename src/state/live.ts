/**
 * Live per-key limits and the session registry, shared by every gateway on one Redis (issue 12
 * "Redis … for what must be shared live"; shared/spec/upstreams.md §4), or in memory for the
 * single-box default (no Redis configured) and as the fallback while Redis is down.
 *
 * **Concurrent-session caps** (`KeyLimits.maxSessions`) are leases in a sorted set per key
 * (`<prefix>lease:<keyId>`, member = session id, score = expiry in Redis-clock ms) — the
 * `redis-semaphore` algorithm (upstreams.md §4: `ZREMRANGEBYSCORE` expired, `ZCARD < limit` →
 * `ZADD`, refreshed by a heartbeat, so a crashed node's slots free after the lease TTL), written as
 * our own Lua because voxgate refreshes all of an instance's leases in ONE round trip per heartbeat
 * (instead of one timer and one command per session) and re-adds them after a Redis restart, which
 * `redis-semaphore` cannot (its refresh fails once the entry is gone): sessions admitted during an
 * outage then count again, and the caps reconverge.
 *
 * **Session registry**: hash `<prefix>sessions` (session id → JSON {instance, key_id, model, kind,
 * started_at}) with expiries in `<prefix>sessions:exp`, refreshed by the same heartbeat; entries of a
 * dead instance are swept by the others' heartbeats (the vision-agents `RedisSessionKVStore` pattern).
 *
 * **Requests per minute** (`KeyLimits.rpm`): `rate-limiter-flexible` `RateLimiterRedis` (60 s fixed
 * window, atomic `SET NX EX` + `INCRBY` Lua) with a `RateLimiterMemory` `insuranceLimiter` that takes
 * over while Redis is down (`rejectIfRedisNotReady`), per the library's wiki (upstreams.md §4).
 *
 * **Fallback** while the configured Redis is unreachable: caps count only this instance's sessions,
 * rpm uses the in-memory insurance limiter; every such decision is counted in
 * `voxgate_state_fallback_decisions_total{limit}` and `voxgate_state_fallback` is 1 (src/state/redis.ts
 * logs the transitions).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { RedisLink } from './redis.js';

/** What a session is, for the registry. */
export interface SessionMeta {
  /** Unique id of the session or request (the request id). */
  sessionId: string;
  keyId: string;
  /** Catalogue code, or the route when the model is not known yet. */
  model: string;
  /** `stt` / `tts` WebSocket session, or `http` request. */
  kind: 'stt' | 'tts' | 'http';
}

/** One registry entry (`GET /v1/status` `cluster.sessions`). */
export interface RegistryEntry {
  session_id: string;
  instance: string;
  key_id: string;
  model: string;
  kind: string;
  /** ISO-8601. */
  started_at: string;
}

/** A held session slot. {@link release} frees it; only the first call does anything. */
export interface Lease {
  /** True when it was granted by this instance alone (Redis unreachable). */
  readonly local: boolean;
  release(): void;
}

/** Outcome of {@link LiveState.consumeRequest}. */
export type RpmVerdict = { ok: true } | { ok: false; retryAfterMs: number };

/** Options of {@link LiveState}. */
export interface LiveStateOptions {
  /** Redis URL; absent = in-memory (single box). */
  redisUrl?: string;
  /** Key prefix (`state.keyPrefix`). Default `voxgate:`. */
  keyPrefix?: string;
  /** Lease / registry TTL without a heartbeat, ms (`state.leaseTtlMs`). Default 15 000. */
  leaseTtlMs?: number;
  /** This instance's id in the registry; default `<hostname>-<pid>-<random>`. */
  instanceId?: string;
  log: Logger;
  /** The gateway's prometheus registry (metrics are added to it). */
  registry?: Registry;
}

/** Lua: take a slot (when `limit` > 0) and register the session. KEYS: lease zset, registry hash, registry expiries. ARGV: limit, ttl ms, session id, registry JSON. Returns 1 granted, 0 full. */
const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], now + ttl, ARGV[3])
return 1`;

/**
 * Lua: the heartbeat. KEYS: registry hash, registry expiries, then one lease zset per session.
 * ARGV: ttl ms, then per session (id, registry JSON, "1" when capped). Re-adds missing entries (a
 * restarted Redis) and sweeps registry entries of dead instances.
 */
const HEARTBEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 500)
if #dead > 0 then
  redis.call('HDEL', KEYS[1], unpack(dead))
  redis.call('ZREM', KEYS[2], unpack(dead))
end
local n = (#ARGV - 1) / 3
for i = 0, n - 1 do
  local sid = ARGV[2 + 3 * i]
  redis.call('HSET', KEYS[1], sid, ARGV[3 + 3 * i])
  redis.call('ZADD', KEYS[2], now + ttl, sid)
  if ARGV[4 + 3 * i] == '1' then
    redis.call('ZADD', KEYS[3 + i], now + ttl, sid)
    redis.call('PEXPIRE', KEYS[3 + i], ttl)
  end
end
return n`;

/** Lua: release. KEYS: lease zset, registry hash, registry expiries. ARGV: session id. */
const RELEASE_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`;

/** Sessions per heartbeat script call. */
const HEARTBEAT_BATCH = 200;

type StateRedis = Redis & {
  vgAcquire(k1: string, k2: string, k3: string, limit: number, ttl: number, sid: string, json: string): Promise<number>;
  vgHeartbeat(numKeys: number, ...args: (string | number)[]): Promise<number>;
  vgRelease(k1: string, k2: string, k3: string, sid: string): Promise<number>;
};

interface Held {
  meta: SessionMeta;
  json: string;
  capped: boolean;
}

/** A default instance id: `<hostname>-<pid>-<6 hex>`. */
export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
}

/** Per-key live limits and the session registry (module docs). One per gateway. */
export class LiveState {
  readonly instanceId: string;
  /** The Redis link when configured. */
  readonly link: RedisLink | null;
  private readonly redis: StateRedis | null;
  private readonly prefix: string;
  private readonly ttl: number;
  private readonly log: Logger;
  private readonly held = new Map<string, Held>();
  private readonly perKey = new Map<string, number>();
  private readonly rpmLimiters = new Map<number, RateLimiterAbstract>();
  private readonly timer: NodeJS.Timeout;
  private beating: Promise<void> | null = null;
  private readonly fallbackDecisions: Counter<'limit'>;
  private closed = false;

  constructor(o: LiveStateOptions) {
    this.instanceId = o.instanceId ?? defaultInstanceId();
    this.prefix = o.keyPrefix ?? 'voxgate:';
    this.ttl = o.leaseTtlMs ?? 15_000;
    this.log = o.log;
    this.link = o.redisUrl ? new RedisLink(o.redisUrl, o.log) : null;
    this.redis = this.link ? (this.link.client as StateRedis) : null;
    if (this.redis) {
      this.redis.defineCommand('vgAcquire', { numberOfKeys: 3, lua: ACQUIRE_LUA });
      this.redis.defineCommand('vgHeartbeat', { lua: HEARTBEAT_LUA });
      this.redis.defineCommand('vgRelease', { numberOfKeys: 3, lua: RELEASE_LUA });
      // Reconvergence: on every (re)connect, write every live session and lease back at once.
      this.link!.onReady(() => void this.heartbeat());
    }
    const registers = o.registry ? [o.registry] : [];
    const link = this.link;
    new Gauge({
      name: 'voxgate_state_fallback',
      help: '1 while the configured Redis is unreachable and per-key limits are enforced by this instance alone (0 when shared, or without Redis)',
      registers,
      collect() {
        this.set(link && !link.up ? 1 : 0);
      },
    });
    this.fallbackDecisions = new Counter({ name: 'voxgate_state_fallback_decisions_total', help: 'Admission decisions taken in memory because Redis was unreachable, by limit', labelNames: ['limit'] as const, registers });
    const held = this.held;
    new Gauge({ name: 'voxgate_state_sessions_registered', help: 'Sessions and requests this instance holds in the session registry', registers, collect() { this.set(held.size); } });
    this.timer = setInterval(() => void this.heartbeat(), Math.max(100, Math.floor(this.ttl / 3)));
    this.timer.unref();
  }

  /** True when a Redis is configured and reachable now. */
  get shared(): boolean {
    return !!this.link?.up;
  }

  /** Sessions this instance holds now. */
  get localCount(): number {
    return this.held.size;
  }

  private leaseKey(keyId: string): string {
    return `${this.prefix}lease:${keyId}`;
  }
  private get regKey(): string {
    return `${this.prefix}sessions`;
  }
  private get regExpKey(): string {
    return `${this.prefix}sessions:exp`;
  }

  /**
   * Take a session slot of key `meta.keyId` under `maxSessions` and register the session.
   * @param maxSessions the key's cap; `undefined`/≤0 = uncapped (the session is only registered).
   * @returns the lease, or `null` when the key already holds `maxSessions` sessions (on every gateway
   *   sharing the Redis; on this instance alone while Redis is down).
   */
  async acquire(meta: SessionMeta, maxSessions?: number): Promise<Lease | null> {
    const capped = maxSessions !== undefined && maxSessions > 0;
    const json = JSON.stringify({ instance: this.instanceId, key_id: meta.keyId, model: meta.model, kind: meta.kind, started_at: new Date().toISOString() });
    let local = true;
    if (this.redis && this.link!.up) {
      try {
        const ok = await this.redis.vgAcquire(this.leaseKey(meta.keyId), this.regKey, this.regExpKey, capped ? maxSessions : 0, this.ttl, meta.sessionId, json);
        if (ok !== 1) return null;
        local = false;
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'shared state: lease acquire failed; deciding locally');
      }
    }
    if (local) {
      if (this.redis && capped) this.fallbackDecisions.inc({ limit: 'max_sessions' });
      if (capped && (this.perKey.get(meta.keyId) ?? 0) >= maxSessions) return null;
    }
    this.held.set(meta.sessionId, { meta, json, capped });
    this.perKey.set(meta.keyId, (this.perKey.get(meta.keyId) ?? 0) + 1);
    let released = false;
    return {
      local,
      release: () => {
        if (released) return;
        released = true;
        this.held.delete(meta.sessionId);
        const n = (this.perKey.get(meta.keyId) ?? 1) - 1;
        if (n > 0) this.perKey.set(meta.keyId, n);
        else this.perKey.delete(meta.keyId);
        // Not re-added by the next heartbeat; if this command is lost, the entry expires after the TTL.
        if (this.redis && this.link!.up) this.redis.vgRelease(this.leaseKey(meta.keyId), this.regKey, this.regExpKey, meta.sessionId).catch(() => undefined);
      },
    };
  }

  /**
   * Count one request of key `keyId` against its requests-per-minute limit.
   * @param rpm the key's limit (> 0).
   * @returns ok, or the wait until the window frees a request, ms.
   */
  async consumeRequest(keyId: string, rpm: number): Promise<RpmVerdict> {
    let limiter = this.rpmLimiters.get(rpm);
    if (!limiter) {
      const keyPrefix = `${this.prefix}rpm${rpm}`;
      const memory = new RateLimiterMemory({ points: rpm, duration: 60, keyPrefix });
      limiter = this.redis ? new RateLimiterRedis({ storeClient: this.redis, points: rpm, duration: 60, keyPrefix, rejectIfRedisNotReady: true, insuranceLimiter: memory }) : memory;
      this.rpmLimiters.set(rpm, limiter);
    }
    if (this.link && !this.link.up) this.fallbackDecisions.inc({ limit: 'rpm' });
    try {
      await limiter.consume(keyId, 1);
      return { ok: true };
    } catch (res) {
      if (res instanceof RateLimiterRes) return { ok: false, retryAfterMs: Math.max(1, Math.ceil(res.msBeforeNext)) };
      // Neither Redis nor the insurance limiter answered: do not refuse a client for our own fault.
      this.log.warn({ err: (res as Error)?.message }, 'rpm limiter failed; request admitted');
      return { ok: true };
    }
  }

  /**
   * The session registry: every live session of every gateway on the Redis (this instance's own
   * sessions when there is none or it is down).
   */
  async sessions(): Promise<RegistryEntry[]> {
    if (this.redis && this.link!.up) {
      try {
        const all = await this.redis.hgetall(this.regKey);
        return Object.entries(all).map(([sid, js]) => ({ session_id: sid, ...(JSON.parse(js) as Omit<RegistryEntry, 'session_id'>) }));
      } catch {
        /* fall through to the local view */
      }
    }
    return [...this.held.entries()].map(([sid, h]) => ({ session_id: sid, ...(JSON.parse(h.json) as Omit<RegistryEntry, 'session_id'>) }));
  }

  /**
   * Refresh (and, after a Redis restart, re-create) every lease and registry entry this instance
   * holds, in batches of {@link HEARTBEAT_BATCH}; one at a time (a call while one runs joins it).
   */
  heartbeat(): Promise<void> {
    if (!this.redis || !this.link!.up || this.closed) return Promise.resolve();
    this.beating ??= (async () => {
      try {
        const items = [...this.held.entries()];
        for (let i = 0; i === 0 || i < items.length; i += HEARTBEAT_BATCH) {
          const batch = items.slice(i, i + HEARTBEAT_BATCH);
          const keys = [this.regKey, this.regExpKey, ...batch.map(([, h]) => this.leaseKey(h.meta.keyId))];
          const argv: (string | number)[] = [this.ttl];
          for (const [sid, h] of batch) argv.push(sid, h.json, h.capped ? '1' : '0');
          await this.redis!.vgHeartbeat(keys.length, ...keys, ...argv);
        }
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'shared state: heartbeat failed');
      } finally {
        this.beating = null;
      }
    })();
    return this.beating;
  }

  /** Stop the heartbeat and close Redis. Held leases are left to expire (or were released by their sessions). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.beating;
    await this.link?.close();
  }
}
