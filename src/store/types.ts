/**
 * The durable store of a gateway (issue 12 "Many gateways, one truth"; shared/spec/upstreams.md §4
 * "Postgres (durable)"): API keys with their quotas, and usage metering rows.
 *
 * Two implementations share this interface:
 * - {@link KeyStore} (src/store/keys.ts) — embedded SQLite in the data directory, the single-box default;
 * - {@link PgKeyStore} (src/store/postgres.ts) — PostgreSQL (`pg`) when `storage.url` or
 *   `VOXGATE_DATABASE_URL` is set, shared by every gateway of a deployment.
 *
 * Keys are stored only as SHA-256 digests and compared in constant time (`crypto.timingSafeEqual`).
 * Every method is async (the SQLite one answers at once); none logs a key.
 */
import type { KeyInfo, KeyLimits } from './keys.js';

export type { KeyInfo, KeyLimits };

/**
 * One metered request or session (issue 12 "usage recorded per key, model, provider and region").
 * Recorded once, when the request/session ends (never on the audio path).
 */
export interface UsageRecord {
  /** Key id (`vgk_<id>_…`). */
  keyId: string;
  /** When the request/session ended. */
  at: Date;
  /** `stt` or `tts`. */
  service: 'stt' | 'tts';
  /** `ws` (WebSocket session) or `http` (one request). */
  transport: 'ws' | 'http';
  /** Catalogue model code. */
  model: string;
  /** Engine type of the backend that served (e.g. `pocketsphinx`, `deepgram`); `none` when no backend was reached. */
  provider: string;
  /** Engine instance id of that backend. */
  backend: string;
  /** Region of that backend (`engineRegion`). */
  region: string;
  /** Requests/sessions (normally 1). */
  requests: number;
  /** STT: seconds of audio received from the client. */
  audioSecondsIn: number;
  /** TTS: characters of text received. */
  charsIn: number;
  /** TTS: seconds of audio synthesised and sent. */
  audioSecondsOut: number;
}

/** Sums of usage over a period. Seconds are floats; chars and requests integers. */
export interface UsageTotals {
  requests: number;
  audioSecondsIn: number;
  charsIn: number;
  audioSecondsOut: number;
}

/** A row of a usage report: totals grouped by key, service, model, provider and region. */
export interface UsageRow extends UsageTotals {
  keyId: string;
  service: 'stt' | 'tts';
  model: string;
  provider: string;
  region: string;
}

/** Filter of {@link ApiKeyStore.queryUsage}. */
export interface UsageQuery {
  /** Only this key. */
  keyId?: string;
  /** Only usage recorded at or after this time. */
  since?: Date;
}

/** The key and usage store a gateway and the CLI use (module docs). */
export interface ApiKeyStore {
  /** `sqlite` or `postgres`. */
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Create a key. @returns the plaintext key (the only time it exists outside the caller) and its info.
   * @param opts.admin admin keys may read other keys' usage (`GET /v1/usage?key=`).
   * @param opts.limits quotas; absent fields are unlimited.
   */
  createKey(name: string, opts?: { admin?: boolean; limits?: KeyLimits }): Promise<{ key: string; info: KeyInfo }>;
  /**
   * Verify a presented key: SHA-256 of it compared in constant time with the stored digest; revoked
   * or unknown keys fail. @returns the key's info, or null. Never throws for bad input (a database
   * failure rejects).
   */
  verifyKey(presented: string): Promise<KeyInfo | null>;
  /** A key's info by id (revoked ones included), or null. */
  getKey(id: string): Promise<KeyInfo | null>;
  /** All keys, newest first, revoked ones included. */
  listKeys(): Promise<KeyInfo[]>;
  /** Revoke by id (or full key). @returns false when no active key matched. */
  revokeKey(idOrKey: string): Promise<boolean>;
  /**
   * Replace (`replace: true`) or merge a key's quotas; a field set to `null` in `limits` is removed
   * (unlimited). @returns the updated info, or null when no key has this id.
   */
  updateLimits(id: string, limits: { [K in keyof KeyLimits]?: number | null }, replace?: boolean): Promise<KeyInfo | null>;
  /**
   * First-start bootstrap: when no active admin key exists, create one, save it to `<dataDir>/admin.key`
   * (0600) and return it (print once); else null. Safe when several gateways start at once.
   */
  bootstrapAdminKey(): Promise<string | null>;
  /** Append usage rows (one batch, one statement/transaction). */
  recordUsage(rows: readonly UsageRecord[]): Promise<void>;
  /** Totals of one key since `since` (inclusive). */
  usageTotals(keyId: string, since: Date): Promise<UsageTotals>;
  /** Usage report grouped by key, service, model, provider and region, biggest keys first. */
  queryUsage(q: UsageQuery): Promise<UsageRow[]>;
  /** Release connections / the database file. */
  close(): Promise<void>;
}

/** Zero totals. */
export const ZERO_TOTALS: Readonly<UsageTotals> = Object.freeze({ requests: 0, audioSecondsIn: 0, charsIn: 0, audioSecondsOut: 0 });

/** The names of the numeric {@link KeyLimits} fields (CLI flags, validation). */
export const LIMIT_FIELDS = ['maxSessions', 'rpm', 'audioSecondsPerDay', 'audioSecondsPerMonth', 'charsPerDay', 'charsPerMonth'] as const;

/**
 * Validate quotas from outside (CLI, JSON): every present field a non-negative finite number
 * (`null` = remove). @throws Error naming the bad field.
 */
export function checkLimits(l: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(l)) {
    if (!(LIMIT_FIELDS as readonly string[]).includes(k)) throw new Error(`unknown limit "${k}"; known: ${LIMIT_FIELDS.join(', ')}`);
    if (v !== null && v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new Error(`limit ${k} must be a non-negative number`);
  }
}

/** Merge a limits update into `cur` (see {@link ApiKeyStore.updateLimits}). */
export function mergeLimits(cur: KeyLimits, upd: { [K in keyof KeyLimits]?: number | null }, replace = false): KeyLimits {
  const out: Record<string, number> = replace ? {} : { ...(cur as Record<string, number>) };
  for (const [k, v] of Object.entries(upd)) {
    if (v === null || v === undefined) delete out[k];
    else out[k] = v;
  }
  return out as KeyLimits;
}

/** Start of the UTC day of `t`. */
export function utcDayStart(t: Date): Date {
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
}

/** Start of the UTC calendar month of `t`. */
export function utcMonthStart(t: Date): Date {
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1));
}
