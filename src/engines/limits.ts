/**
 * Provider concurrency limits enforced before dialling (issue 11: "Provider concurrency limits (e.g.
 * Cartesia 2–15 TTS sockets by plan, smallest 1 active TTS request per account) are enforced before
 * dialling: the session waits a bounded time or gets `rate_limit`, never a provider-side rejection
 * mid-session"; shared/spec/upstreams.md §1.6, §1.12).
 *
 * One {@link ConcurrencyLimiter} per provider *account* (provider type + the NAME of the environment
 * variable holding its key), shared by every engine instance of that account through
 * {@link accountLimiter}: two regions of one ElevenLabs account share one cap, two accounts do not.
 * Waiters are served first come, first served. A BYOK session (`RequestContext.providerKey`) runs on
 * the client's own account and is not counted against the gateway's.
 */
import { VoxgateError } from '../util/errors.js';

/** Releases a slot taken by {@link ConcurrencyLimiter.acquire}. Idempotent. */
export type Release = () => void;

interface Waiter {
  grant: (r: Release) => void;
  fail: (e: Error) => void;
}

/** A counting semaphore with a bounded, abortable, FIFO wait. */
export class ConcurrencyLimiter {
  private active = 0;
  private readonly waiters: Waiter[] = [];

  /**
   * @param max slots (≥ 1); `Infinity` never waits.
   * @param label shown in the `rate_limit` message, e.g. `cartesia account CARTESIA_API_KEY`.
   */
  constructor(
    public max: number,
    readonly label: string,
  ) {}

  /** Slots in use. */
  get inUse(): number {
    return this.active;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Take a slot, waiting at most `waitMs` for one.
   * @param waitMs bounded wait in ms (0: fail at once when full).
   * @param signal aborting it gives up the wait (rejects with the signal's reason, or an `unavailable` error).
   * @returns a {@link Release} to call exactly when the provider connection/request ends.
   * @throws VoxgateError `rate_limit` (retryable: another backend may have room) when no slot freed in time.
   */
  acquire(waitMs: number, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new VoxgateError('unavailable', 'request aborted'));
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (waitMs <= 0) return Promise.reject(this.full());
    return new Promise<Release>((resolve, reject) => {
      const w: Waiter = {
        grant: (r) => {
          cleanup();
          resolve(r);
        },
        fail: (e) => {
          cleanup();
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.drop(w);
        w.fail(this.full());
      }, waitMs);
      const onAbort = (): void => {
        this.drop(w);
        w.fail(signal?.reason instanceof Error ? signal.reason : new VoxgateError('unavailable', 'request aborted'));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }

  private drop(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private full(): VoxgateError {
    return new VoxgateError('rate_limit', `${this.label}: all ${this.max} concurrent provider connections are in use`, { retryable: true });
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next.grant(this.releaser());
      else this.active--;
    };
  }
}

const ACCOUNTS = new Map<string, ConcurrencyLimiter>();

/**
 * The process-wide limiter of one provider account. The first caller's `max` creates it; a later
 * caller with a smaller `max` lowers it (the strictest configured plan wins).
 * @param provider engine type, e.g. `cartesia`.
 * @param account the account's identity, normally the `apiKeyEnv` NAME (never the key itself).
 * @param max concurrent connections/requests the plan allows; `undefined`/`Infinity`: unlimited.
 */
export function accountLimiter(provider: string, account: string, max: number | undefined): ConcurrencyLimiter {
  const key = `${provider}\u0000${account}`;
  const cap = max === undefined || max <= 0 ? Infinity : max;
  let l = ACCOUNTS.get(key);
  if (!l) {
    l = new ConcurrencyLimiter(cap, `${provider} account ${account}`);
    ACCOUNTS.set(key, l);
  } else if (cap < l.max) l.max = cap;
  return l;
}

/** Forget every account limiter (tests that build several gateways in one process). */
export function resetAccountLimiters(): void {
  ACCOUNTS.clear();
}
