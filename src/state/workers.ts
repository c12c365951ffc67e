/**
 * Engine workers that register (issue 12 "Engine workers that register"; shared/spec/upstreams.md
 * §2.3, §4 "Worker distribution"): LiveKit's worker model — a worker reports `{load, status:
 * available|full}` every 2.5 s and the server picks among available workers — with Redis as the
 * meeting point instead of a worker-initiated WebSocket.
 *
 * Trade-off (docs/operations.md "Scale-out"): the worker needs no connection to the gateways and the
 * gateways need no registry of their own, but each worker must still accept the gateways' WebSocket
 * connections on `advertiseUrl` — a port on the private network shared with the gateways, never one
 * exposed to the internet. Dialling out from the worker (LiveKit's `/agent` socket) would remove that
 * port at the cost of a reverse-relay protocol; the directory below is the part that would stay.
 *
 * Keys: `<prefix>worker:<id>` (JSON {@link WorkerInfo}, expiring after 3 report periods) and the set
 * `<prefix>workers` of ids (an id whose entry expired is dropped by the next gateway poll).
 */
import type { Logger } from 'pino';
import type { RedisLink } from './redis.js';

/** One worker's announcement. */
export interface WorkerInfo {
  /** Stable for the worker process' life (its registry instance id). */
  id: string;
  /** `ws://host:port` gateways dial. */
  url: string;
  region: string;
  /** STT catalogue codes it serves. */
  stt: string[];
  /** TTS catalogue codes it serves. */
  tts: string[];
  /** Open sessions / (open sessions + free engine streams), 0–1. */
  load: number;
  /** At or above `worker.fullAt`, or draining: gateways send it nothing new. */
  full: boolean;
  sessions: number;
  /** Epoch ms of the report. */
  at: number;
  /** Report period, ms (the entry expires after 3). */
  intervalMs: number;
}

/** What the announcer reads each period. */
export interface WorkerLoad {
  sessions: number;
  /** Engine streams that could still be opened (undefined: unknown, load = 0). */
  freeStreams?: number;
}

/** Worker side: announce every `intervalMs` until {@link stop}. */
export class WorkerAnnouncer {
  private readonly timer: NodeJS.Timeout;
  private draining = false;
  private stopped = false;

  /**
   * @param base the announcement without load fields.
   * @param load called each period.
   * @param fullAt load at and above which the worker reports itself full.
   */
  constructor(
    private readonly link: RedisLink,
    private readonly prefix: string,
    private readonly base: Omit<WorkerInfo, 'load' | 'full' | 'sessions' | 'at' | 'intervalMs'>,
    private readonly load: () => WorkerLoad,
    private readonly intervalMs: number,
    private readonly fullAt: number,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.report(), intervalMs);
    this.timer.unref();
    link.onReady(() => void this.report());
  }

  /** The current announcement. */
  current(): WorkerInfo {
    const l = this.load();
    const cap = l.sessions + (l.freeStreams ?? 0);
    const load = l.freeStreams === undefined || cap === 0 ? (l.freeStreams === 0 ? 1 : 0) : l.sessions / cap;
    return { ...this.base, load: Math.round(load * 1000) / 1000, full: this.draining || load >= this.fullAt, sessions: l.sessions, at: Date.now(), intervalMs: this.intervalMs };
  }

  /** Write the announcement now (TTL 3 periods). Never throws. */
  async report(): Promise<void> {
    if (this.stopped || !this.link.up) return;
    try {
      await this.link.client
        .multi()
        .set(`${this.prefix}worker:${this.base.id}`, JSON.stringify(this.current()), 'PX', this.intervalMs * 3)
        .sadd(`${this.prefix}workers`, this.base.id)
        .exec();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'worker registration failed');
    }
  }

  /** Report full from now on (a draining worker takes no new sessions), at once. */
  async markDraining(): Promise<void> {
    this.draining = true;
    await this.report();
  }

  /** Stop reporting and remove the entry. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    if (!this.link.up) return;
    await this.link.client
      .multi()
      .del(`${this.prefix}worker:${this.base.id}`)
      .srem(`${this.prefix}workers`, this.base.id)
      .exec()
      .catch(() => undefined);
  }
}

/** Gateway side: the registered workers, polled every `pollMs`. */
export class WorkerDirectory {
  private list: WorkerInfo[] = [];
  private readonly timer: NodeJS.Timeout;
  private polling: Promise<void> | null = null;
  /** Epoch ms of the last reconnect to a RESTARTED Redis (new `run_id`): empty until the workers report again. */
  private reconnectedAt = 0;
  /** `run_id` of the Redis server last connected to (INFO server). */
  private runId: string | undefined;

  constructor(
    private readonly link: RedisLink,
    private readonly prefix: string,
    pollMs = 1000,
  ) {
    this.timer = setInterval(() => void this.poll(), pollMs);
    this.timer.unref();
    link.onReady(() => {
      link.client
        .info('server')
        .then((text) => {
          const id = /run_id:(\w+)/.exec(text)?.[1];
          if (this.runId && id && id !== this.runId) this.reconnectedAt = Date.now();
          this.runId = id ?? this.runId;
        })
        .catch(() => undefined)
        .finally(() => void this.poll());
    });
  }

  /** Every live worker as last read (kept as is while Redis is down: workers keep serving). */
  all(): readonly WorkerInfo[] {
    return this.list;
  }

  /**
   * Workers of `region` serving STT model `code` that are not full, least loaded first (ties: fewer
   * sessions, then id).
   */
  pick(kind: 'stt' | 'tts', code: string, region: string): WorkerInfo[] {
    return this.list
      .filter((w) => w.region === region && !w.full && w[kind].includes(code))
      .sort((a, b) => a.load - b.load || a.sessions - b.sessions || a.id.localeCompare(b.id));
  }

  /** Read the directory now (joins a poll in flight). */
  poll(): Promise<void> {
    if (!this.link.up) return Promise.resolve();
    this.polling ??= (async () => {
      try {
        const c = this.link.client;
        const ids = await c.smembers(`${this.prefix}workers`);
        const vals = ids.length ? await c.mget(...ids.map((id) => `${this.prefix}worker:${id}`)) : [];
        const next: WorkerInfo[] = [];
        const gone: string[] = [];
        vals.forEach((v, i) => {
          if (v === null) gone.push(ids[i]!);
          else
            try {
              next.push(JSON.parse(v) as WorkerInfo);
            } catch {
              gone.push(ids[i]!);
            }
        });
        if (gone.length) await c.srem(`${this.prefix}workers`, ...gone);
        // Just after reconnecting to a restarted (empty) Redis, workers not yet re-announced keep their
        // last entry for one entry lifetime (3 report periods), so routing does not blink. A worker that
        // removed itself on a live Redis is dropped at once.
        const now = Date.now();
        const seen = new Set(next.map((w) => w.id));
        for (const w of this.list) if (!seen.has(w.id) && now - this.reconnectedAt < 3 * (w.intervalMs ?? 2500) && now - w.at < 6 * (w.intervalMs ?? 2500)) next.push(w);
        this.list = next;
      } catch {
        /* keep the last list */
      } finally {
        this.polling = null;
      }
    })();
    return this.polling;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
