/**
 * Backend health shared by every gateway on one Redis (issue 12: "backend health shared by all
 * gateways"; shared/spec/upstreams.md §4 "Also cache provider circuit-breaker state there"): a
 * failure one gateway sees cools the backend down on all of them, and a successful probe anywhere
 * makes it healthy everywhere.
 *
 * Each local verdict of the gateway's {@link BackendHealth} (`onVerdict`) is
 *  - published on channel `<prefix>health` (JSON `{from, verdict}`), applied at once by the others
 *    (`BackendHealth.applyRemote`; a gateway ignores its own messages), and
 *  - kept in hash `<prefix>health` (backend id → `{until: epoch ms, consecutive, message}`; removed on
 *    success), which a gateway reads when it (re)connects, so one started during a cool-down knows it.
 * Without Redis, or while it is down, health stays per gateway as before. Cool-downs cross machines as
 * absolute wall-clock times, so gateways' clocks should be NTP-synchronised (a skew of s seconds
 * shortens or lengthens a shared cool-down by s).
 */
import type { Logger } from 'pino';
import type { BackendHealth, HealthVerdict } from '../engines/health.js';
import type { RedisLink } from './redis.js';

interface Stored {
  until: number;
  consecutive: number;
  message: string;
}

/** Wire a gateway's {@link BackendHealth} to the shared Redis (module docs). */
export class HealthShare {
  private readonly channel: string;
  private readonly hash: string;

  /**
   * @param prefix `state.keyPrefix`.
   * @param instanceId this gateway's id (its own messages are ignored).
   */
  constructor(
    private readonly link: RedisLink,
    private readonly health: BackendHealth,
    prefix: string,
    private readonly instanceId: string,
    private readonly log: Logger,
  ) {
    this.channel = `${prefix}health`;
    this.hash = `${prefix}health`;
    health.onVerdict = (v) => this.publish(v);
    const sub = link.subscriber();
    sub.subscribe(this.channel).catch((err: Error) => log.warn({ err: err.message }, 'shared health: subscribe failed'));
    sub.on('message', (ch: string, text: string) => {
      if (ch !== this.channel) return;
      try {
        const m = JSON.parse(text) as { from: string; verdict: HealthVerdict };
        if (m.from !== this.instanceId && typeof m.verdict?.id === 'string') this.health.applyRemote(m.verdict);
      } catch {
        /* not ours */
      }
    });
    link.onReady(() => void this.load());
  }

  /** Apply every cool-down still running in the shared hash (on connect and reconnect). */
  async load(): Promise<void> {
    try {
      const all = await this.link.client.hgetall(this.hash);
      const now = Date.now();
      for (const [id, text] of Object.entries(all)) {
        const s = JSON.parse(text) as Stored;
        if (s.until > now) this.health.applyRemote({ id, ok: false, coolDownMs: s.until - now, consecutive: s.consecutive, message: s.message });
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'shared health: load failed');
    }
  }

  private publish(v: HealthVerdict): void {
    if (!this.link.up) return;
    const c = this.link.client;
    const msg = JSON.stringify({ from: this.instanceId, verdict: v });
    const stored = v.ok ? null : JSON.stringify({ until: Date.now() + v.coolDownMs, consecutive: v.consecutive, message: v.message } satisfies Stored);
    const p = stored ? c.multi().hset(this.hash, v.id, stored).publish(this.channel, msg).exec() : c.multi().hdel(this.hash, v.id).publish(this.channel, msg).exec();
    p.catch((err: Error) => this.log.debug({ err: err.message }, 'shared health: publish failed'));
  }
}
