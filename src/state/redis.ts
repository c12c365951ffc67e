/**
 * The gateway's Redis connection for shared live state (issue 12; shared/spec/upstreams.md §4
 * "Redis (primary)"), with `ioredis`.
 *
 * Commands never wait for a connection: the offline queue is off and each command has a 1 s budget,
 * so while Redis is down every caller gets an error at once and falls back to its in-memory
 * equivalent (src/state/live.ts) instead of stalling a handshake. ioredis reconnects by itself (every
 * ≤ 1 s); {@link RedisLink} reports the transitions (`down` / `up`), logs them once each, and keeps the
 * `voxgate_state_fallback` gauge (1 while the configured Redis is not usable).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** Per-command budget, ms: a stalled Redis costs a handshake at most this long before falling back. */
export const REDIS_COMMAND_TIMEOUT_MS = 1000;

/** One configured Redis: the command connection, a lazily made subscriber, and its up/down state. */
export class RedisLink {
  /** The command connection. */
  readonly client: Redis;
  private sub: Redis | null = null;
  private readonly upListeners: (() => void)[] = [];
  private wasUp = false;
  private downLogged = false;
  private closing = false;

  /**
   * @param url `redis://…` (never logged: it may carry a password).
   * @param log where transitions are logged.
   */
  constructor(
    readonly url: string,
    private readonly log: Logger,
  ) {
    this.client = RedisLink.connect(url);
    this.client.on('ready', () => this.onUp());
    this.client.on('close', () => this.onDown('connection closed'));
    this.client.on('error', (err: Error) => this.onDown(err.message));
  }

  /**
   * A new ioredis connection with the fail-fast options (module docs): no offline queue, one retry per
   * request, reconnect every min(100 ms × attempt, 1 s), 2 s connect timeout.
   */
  static connect(url: string): Redis {
    return new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      retryStrategy: (times) => Math.min(times * 100, 1000),
      lazyConnect: false,
    });
  }

  /** True while commands can be sent (ioredis status `ready`). */
  get up(): boolean {
    return this.client.status === 'ready';
  }

  /** Call `fn` every time the connection becomes ready (first connect and every reconnect). */
  onReady(fn: () => void): void {
    this.upListeners.push(fn);
  }

  /**
   * A second connection in subscriber mode (Redis pub/sub needs its own), made on first use; it
   * reconnects and re-subscribes by itself (ioredis `autoResubscribe`).
   */
  subscriber(): Redis {
    if (!this.sub) {
      this.sub = new Redis(this.url, { connectTimeout: 2000, retryStrategy: (times) => Math.min(times * 100, 1000), maxRetriesPerRequest: null });
      this.sub.on('error', () => undefined); // the command connection logs the outage
    }
    return this.sub;
  }

  private onUp(): void {
    if (this.wasUp && !this.downLogged) return;
    this.log.info(this.downLogged ? 'shared state: Redis reachable again; limits use Redis' : 'shared state: connected to Redis');
    this.wasUp = true;
    this.downLogged = false;
    for (const fn of this.upListeners) {
      try {
        fn();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'shared state: reconnect hook failed');
      }
    }
  }

  private onDown(reason: string): void {
    if (this.downLogged || this.up || this.closing) return;
    this.downLogged = true;
    this.log.warn({ reason }, 'shared state: Redis unreachable; per-key limits fall back to this instance alone until it is back');
  }

  /** Close both connections (no reconnect). */
  async close(): Promise<void> {
    this.closing = true;
    this.upListeners.length = 0;
    await Promise.all([this.client, this.sub].filter((c): c is Redis => c !== null).map((c) => c.quit().catch(() => c.disconnect())));
  }
}
