/**
 * What the Cartesia engine types share (issue 11; shared/spec/upstreams.md §1.6, §1.7): hosts per
 * region, the API version, plan concurrency, the upgrade headers and the account limiter.
 *
 * ## Regions → hosts (upstreams.md §1.6 [CA4])
 * | region                         | host                                   |
 * |--------------------------------|----------------------------------------|
 * | any (default)                  | `wss://api.cartesia.ai` (routes to the nearest Cartesia region) |
 * | Enterprise dedicated US/EU/UK/IN/AU | not public: set `url` to the host Cartesia gives you |
 * The instance's `region` is only voxgate's routing label; `url` picks the host.
 *
 * ## Auth and version (upstreams.md §1.6, [CA1], [CA3] migration guides)
 * `Authorization: Bearer <key>` and `Cartesia-Version: <apiVersion>` (default `2026-03-01`, the
 * version of the current docs) on the WebSocket upgrade. The key comes from the environment variable
 * named by `apiKeyEnv` (or the client's BYOK key on STT), never from the config file, and is redacted
 * from every upstream text that reaches a message.
 *
 * ## Plan concurrency ([CA2])
 * | plan    | TTS (active contexts) | STT (streams) |
 * |---------|----|----|
 * | free    | 2  | 8  |
 * | pro     | 3  | 12 |
 * | startup | 5  | 20 |
 * | scale   | 15 | 60 |
 * `maxConcurrent` (or the `plan`'s value) is enforced before dialling with {@link accountLimiter}
 * (src/engines/limits.ts), per account = provider type + kind + `apiKeyEnv`, so a session beyond it waits up
 * to `queueWaitMs` and then gets a retryable `rate_limit` — never Cartesia's 429 mid-session.
 */
import { z } from 'zod';
import { accountLimiter, type ConcurrencyLimiter } from '../../limits.js';

/** Default host (Cartesia routes to its nearest region). */
export const CARTESIA_DEFAULT_URL = 'wss://api.cartesia.ai';
/** `Cartesia-Version` sent by default (current docs, [CA1]/[CA3]). */
export const CARTESIA_API_VERSION = '2026-03-01';

/** Cartesia plans and their concurrency ([CA2], upstreams.md §1.6/§1.7). */
export const CARTESIA_PLANS = {
  free: { tts: 2, stt: 8 },
  pro: { tts: 3, stt: 12 },
  startup: { tts: 5, stt: 20 },
  scale: { tts: 15, stt: 60 },
} as const;
/** A plan name. */
export type CartesiaPlan = keyof typeof CARTESIA_PLANS;

/** zod shape of the settings both Cartesia types have (times in ms). */
export const cartesiaCommonShape = {
  /** `Cartesia-Version` header value. */
  apiVersion: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'apiVersion is a date, e.g. 2026-03-01').default(CARTESIA_API_VERSION),
  /** The account's plan: sets `maxConcurrent` when that is not given. Absent with no `maxConcurrent`: no limit. */
  plan: z.enum(['free', 'pro', 'startup', 'scale']).optional(),
  /** Concurrent upstream sessions (TTS: WebSockets, one active context each; STT: streams) of this account. */
  maxConcurrent: z.number().int().positive().optional(),
  /** How long a session waits for a free slot before `rate_limit`, ms (0 = refuse at once). */
  queueWaitMs: z.number().int().min(0).default(2000),
};

/**
 * The concurrency cap of an instance: `maxConcurrent`, else the plan's value for `kind`, else unlimited.
 * @returns a positive integer or `undefined` (no limit).
 */
export function cartesiaCap(kind: 'tts' | 'stt', s: { plan?: CartesiaPlan; maxConcurrent?: number }): number | undefined {
  return s.maxConcurrent ?? (s.plan ? CARTESIA_PLANS[s.plan][kind] : undefined);
}

/**
 * The process-wide limiter of the account behind an instance (TTS and STT limits are separate at
 * Cartesia, so they are separate limiters). Account identity = the `apiKeyEnv` NAME.
 */
export function cartesiaLimiter(kind: 'tts' | 'stt', apiKeyEnv: string | undefined, s: { plan?: CartesiaPlan; maxConcurrent?: number }): ConcurrencyLimiter {
  return accountLimiter(`cartesia-${kind}`, apiKeyEnv ?? '(no key)', cartesiaCap(kind, s));
}

/** The upgrade headers: bearer key (when there is one) and the API version. */
export function cartesiaHeaders(key: string | undefined, apiVersion: string): Record<string, string> {
  return { ...(key ? { Authorization: `Bearer ${key}` } : {}), 'Cartesia-Version': apiVersion };
}

/**
 * `base` (ws/wss/http/https, a path kept as a prefix) + `path`, as a ws/wss URL.
 * @param path e.g. `/tts/websocket`.
 */
export function cartesiaUrl(base: string, path: string): URL {
  const u = new URL(base);
  if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol === 'http:') u.protocol = 'ws:';
  u.pathname = u.pathname.replace(/\/+$/, '') + path;
  return u;
}
