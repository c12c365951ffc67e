/**
 * ElevenLabs settings shared by the STT (Scribe realtime) and TTS (stream-input / multi-stream-input)
 * engine types `elevenlabs` (issue 11; shared/spec/upstreams.md §1.4, §1.5).
 *
 * ## Residency → host (upstreams.md §1.4 [EL3 `src/environments.ts`], [EL4])
 *
 * | `residency` | host                                   |
 * |-------------|----------------------------------------|
 * | `global`    | `wss://api.elevenlabs.io` (default)    |
 * | `us`        | `wss://api.us.elevenlabs.io`           |
 * | `eu`        | `wss://api.eu.residency.elevenlabs.io` |
 * | `in`        | `wss://api.in.residency.elevenlabs.io` |
 * | `sg`        | `wss://api.sg.residency.elevenlabs.io` |
 *
 * Residency environments are separate workspaces with separate API keys [EL4]: a residency is a
 * region, and each region is its own engine instance with its own `apiKeyEnv` (e.g.
 * `engines.el-eu = {type: "elevenlabs", region: "eu-central-1", residency: "eu", apiKeyEnv: "ELEVENLABS_EU_KEY"}`).
 * `url` overrides the host (tests point it at a loopback fake); a path in `url` is kept as a prefix.
 *
 * Auth: the key goes in the `xi-api-key` upgrade header [EL1, EL3] — never in the query or a message.
 */
import { z } from 'zod';
import { accountLimiter, type ConcurrencyLimiter } from '../../limits.js';

/** Provider name used for account limiters and messages. */
export const PROVIDER = 'elevenlabs';

/** Header carrying the API key on every ElevenLabs WebSocket (upstreams.md §1.4, §1.5). */
export const AUTH_HEADER = 'xi-api-key';

/** Default `apiKeyEnv` when an instance names none. */
export const DEFAULT_API_KEY_ENV = 'ELEVENLABS_API_KEY';

/** Residency → WebSocket base URL (see the module table). */
export const ELEVENLABS_HOSTS = {
  global: 'wss://api.elevenlabs.io',
  us: 'wss://api.us.elevenlabs.io',
  eu: 'wss://api.eu.residency.elevenlabs.io',
  in: 'wss://api.in.residency.elevenlabs.io',
  sg: 'wss://api.sg.residency.elevenlabs.io',
} as const;

/** A residency name (key of {@link ELEVENLABS_HOSTS}). */
export type Residency = keyof typeof ELEVENLABS_HOSTS;

/** Settings keys both kinds share (times in ms). */
export const elevenLabsCommonShape = {
  /** Which residency host serves this instance (default `global`); ignored when `url` is set. */
  residency: z.enum(['global', 'us', 'eu', 'in', 'sg']).default('global'),
  /** NAME of the environment variable holding this instance's key (residency keys differ: one instance per residency). */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'apiKeyEnv is the NAME of an environment variable, not the key')
    .default(DEFAULT_API_KEY_ENV),
  /** Concurrent provider connections (STT streams / TTS generations) the account's plan allows; absent = unlimited. Enforced before dialling. */
  maxConcurrent: z.number().int().positive().optional(),
  /** How long a session waits for a free slot under `maxConcurrent` before `rate_limit`, ms. */
  queueWaitMs: z.number().int().min(0).default(2000),
};

/**
 * The base URL of an instance: `url` when set, else its residency's host.
 * @returns a URL string without a trailing slash.
 */
export function elevenLabsBase(s: { url?: string; residency: Residency }): string {
  return (s.url ?? ELEVENLABS_HOSTS[s.residency]).replace(/\/+$/, '');
}

/**
 * The account limiter of an instance (issue 11: provider caps enforced before dialling), shared by
 * every instance with the same `apiKeyEnv`.
 */
export function elevenLabsLimiter(s: { apiKeyEnv: string; maxConcurrent?: number }): ConcurrencyLimiter {
  return accountLimiter(PROVIDER, s.apiKeyEnv, s.maxConcurrent);
}
