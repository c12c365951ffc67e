/**
 * PostgreSQL key and usage store (issue 12 "Postgres (`pg`) for API keys, quotas and usage";
 * shared/spec/upstreams.md §4 "Postgres (durable)"), used when `storage.url` or
 * `VOXGATE_DATABASE_URL` is set. Every gateway of a deployment shares it.
 *
 * - **Migrations** ({@link MIGRATIONS}) run at start in one transaction holding a transaction-level
 *   advisory lock (`pg_advisory_xact_lock`), recorded in `schema_migrations(version, name, applied_at)`:
 *   idempotent, and several gateways starting at once apply each migration exactly once (the others
 *   wait on the lock, then find them applied). PostgreSQL DDL is transactional, so a failed migration
 *   leaves nothing half-applied.
 * - **Keys** are stored only as SHA-256 digests (`bytea`); verification fetches the row by the public
 *   id and compares digests with `crypto.timingSafeEqual` (same key format as the SQLite store).
 * - **Verified-key cache**: a verified key is remembered by this instance for `cacheTtlMs` (default
 *   {@link DEFAULT_KEY_CACHE_TTL_MS}), so most requests cost no database round trip; a key revoked on
 *   any instance is therefore refused by every instance within that TTL (issue 12: "within 5 s").
 *   Failures are never cached: a key created on another instance works here at once (cache miss → DB).
 * - **Usage** rows are appended in batches (`unnest` arrays, one statement per batch).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { adminKeyPath, type KeyInfo, type KeyLimits } from './keys.js';
import { mergeLimits, type ApiKeyStore, type UsageQuery, type UsageRecord, type UsageRow, type UsageTotals } from './types.js';

/** Default lifetime of a verified key in the per-instance cache, ms (revocation reaches every instance within it). */
export const DEFAULT_KEY_CACHE_TTL_MS = 2000;
/** Most keys the per-instance cache holds (oldest evicted first). */
const KEY_CACHE_MAX = 10_000;
/** Advisory lock ids (arbitrary constants, `pg_advisory_xact_lock(bigint)`): migrations, admin bootstrap. */
const MIGRATION_LOCK = 0x766f786d; // "voxm"
const ADMIN_LOCK = 0x766f7861; // "voxa"

const KEY_RE = /^vgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** One schema migration: applied in order, once per database. Never edit an applied one; add a new one. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The schema, as migrations (see module docs). */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'api_keys',
    sql: `CREATE TABLE api_keys (
      id text PRIMARY KEY,
      name text NOT NULL,
      hash bytea NOT NULL,
      admin boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      revoked_at timestamptz,
      limits jsonb NOT NULL DEFAULT '{}'::jsonb
    )`,
  },
  {
    version: 2,
    name: 'usage_events',
    sql: `CREATE TABLE usage_events (
      id bigserial PRIMARY KEY,
      key_id text NOT NULL,
      at timestamptz NOT NULL,
      service text NOT NULL,
      transport text NOT NULL,
      model text NOT NULL,
      provider text NOT NULL,
      backend text NOT NULL,
      region text NOT NULL,
      requests integer NOT NULL,
      audio_seconds_in double precision NOT NULL,
      chars_in bigint NOT NULL,
      audio_seconds_out double precision NOT NULL
    );
    CREATE INDEX usage_events_key_at ON usage_events (key_id, at);
    CREATE INDEX usage_events_at ON usage_events (at)`,
  },
];

/**
 * Apply the pending {@link MIGRATIONS} (module docs: one transaction, advisory lock, `schema_migrations`).
 * @returns the versions this call applied (empty when the schema was current).
 * @throws the database error when a migration fails (nothing of that transaction is kept).
 */
export async function migrate(pool: pg.Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await c.query(m.sql);
      await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await c.query('COMMIT');
    return applied;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

interface PgRow {
  id: string;
  name: string;
  hash: Buffer;
  admin: boolean;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  limits: KeyLimits | null;
}

function toInfo(r: PgRow): KeyInfo {
  return {
    id: r.id,
    name: r.name,
    createdAt: r.created_at.toISOString(),
    lastUsedAt: r.last_used_at ? r.last_used_at.toISOString() : null,
    revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
    admin: r.admin,
    limits: r.limits && typeof r.limits === 'object' ? { ...r.limits } : {},
  };
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Options of {@link PgKeyStore.open}. */
export interface PgKeyStoreOptions {
  /** `postgres://user:pass@host:port/db` (a secret: never logged). */
  url: string;
  /** Data directory: where the first-start admin key is saved for the local CLI. */
  dataDir: string;
  /** Verified-key cache lifetime, ms (0 = no cache). Default {@link DEFAULT_KEY_CACHE_TTL_MS}. */
  cacheTtlMs?: number;
  /** Pool size (default 10). */
  maxConnections?: number;
  /** Apply migrations at open (default true). */
  migrate?: boolean;
  /** Called with errors of idle pool connections (default: ignored; the next query reconnects). */
  onError?: (err: Error) => void;
}

/** The PostgreSQL {@link ApiKeyStore} (module docs). Build with {@link PgKeyStore.open}. */
export class PgKeyStore implements ApiKeyStore {
  readonly kind = 'postgres' as const;
  /** Verified keys by SHA-256 (hex) of the presented key → info and expiry (ms since epoch). */
  private readonly cache = new Map<string, { info: KeyInfo; until: number }>();
  private readonly ttlMs: number;
  private closed = false;

  private constructor(
    readonly pool: pg.Pool,
    private readonly o: PgKeyStoreOptions,
  ) {
    this.ttlMs = o.cacheTtlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
  }

  /**
   * Connect and (by default) migrate.
   * @throws when the database cannot be reached or a migration fails (the pool is closed then).
   */
  static async open(o: PgKeyStoreOptions): Promise<PgKeyStore> {
    const pool = new pg.Pool({ connectionString: o.url, max: o.maxConnections ?? 10, connectionTimeoutMillis: 10_000 });
    pool.on('error', (err) => o.onError?.(err));
    try {
      // A server still starting ("the database system is starting up", SQLSTATE 57P03: e.g. started
      // together with the gateways) is waited for, up to 30 s; any other failure fails the start.
      for (let waited = 0; ; waited += 250) {
        try {
          if (o.migrate !== false) await migrate(pool);
          else await pool.query('SELECT 1');
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== '57P03' || waited >= 30_000) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new Error(`cannot open the PostgreSQL store (storage.url): ${(err as Error).message}`, { cause: err });
    }
    return new PgKeyStore(pool, o);
  }

  async createKey(name: string, opts: { admin?: boolean; limits?: KeyLimits } = {}): Promise<{ key: string; info: KeyInfo }> {
    const id = randomBytes(6).toString('hex');
    const key = `vgk_${id}_${randomBytes(32).toString('base64url')}`;
    const r = await this.pool.query<PgRow>('INSERT INTO api_keys (id, name, hash, admin, limits) VALUES ($1, $2, $3, $4, $5) RETURNING *', [id, name, digest(key), !!opts.admin, JSON.stringify(opts.limits ?? {})]);
    return { key, info: toInfo(r.rows[0]!) };
  }

  /**
   * {@link ApiKeyStore.verifyKey}: the per-instance cache first (by digest; a hit is checked for expiry
   * only), then the database. Only successes are cached.
   */
  async verifyKey(presented: string): Promise<KeyInfo | null> {
    const got = digest(presented); // hashed even when malformed: the failure path costs about the same
    const m = KEY_RE.exec(presented);
    if (!m) return null;
    const h = got.toString('hex');
    const now = Date.now();
    const hit = this.cache.get(h);
    if (hit) {
      if (hit.until > now) return hit.info;
      this.cache.delete(h);
    }
    const r = await this.pool.query<PgRow>('SELECT * FROM api_keys WHERE id = $1', [m[1]]);
    const row = r.rows[0];
    if (!row || row.revoked_at) return null;
    if (row.hash.length !== got.length || !timingSafeEqual(got, row.hash)) return null;
    const info = toInfo({ ...row, last_used_at: new Date(now) });
    if (this.ttlMs > 0) {
      if (this.cache.size >= KEY_CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(h, { info, until: now + this.ttlMs });
    }
    // last_used_at is bookkeeping: written on cache misses only, never awaited by the request.
    this.pool.query('UPDATE api_keys SET last_used_at = now() WHERE id = $1', [row.id]).catch((err: Error) => this.o.onError?.(err));
    return info;
  }

  async getKey(id: string): Promise<KeyInfo | null> {
    const r = await this.pool.query<PgRow>('SELECT * FROM api_keys WHERE id = $1', [id]);
    return r.rows[0] ? toInfo(r.rows[0]) : null;
  }

  async listKeys(): Promise<KeyInfo[]> {
    return (await this.pool.query<PgRow>('SELECT * FROM api_keys ORDER BY created_at DESC, id')).rows.map(toInfo);
  }

  /** {@link ApiKeyStore.revokeKey}; this instance's cache forgets the key at once (others within their TTL). */
  async revokeKey(idOrKey: string): Promise<boolean> {
    const id = KEY_RE.exec(idOrKey)?.[1] ?? idOrKey;
    const r = await this.pool.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
    this.forget(id);
    return (r.rowCount ?? 0) > 0;
  }

  /** {@link ApiKeyStore.updateLimits} (row locked `FOR UPDATE` while merging). */
  async updateLimits(id: string, limits: { [K in keyof KeyLimits]?: number | null }, replace = false): Promise<KeyInfo | null> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const cur = await c.query<PgRow>('SELECT * FROM api_keys WHERE id = $1 FOR UPDATE', [id]);
      if (!cur.rows[0]) {
        await c.query('ROLLBACK');
        return null;
      }
      const next = mergeLimits(toInfo(cur.rows[0]).limits, limits, replace);
      const r = await c.query<PgRow>('UPDATE api_keys SET limits = $2 WHERE id = $1 RETURNING *', [id, JSON.stringify(next)]);
      await c.query('COMMIT');
      this.forget(id);
      return toInfo(r.rows[0]!);
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /** {@link ApiKeyStore.bootstrapAdminKey}: under an advisory lock, so concurrent first starts create one admin key. */
  async bootstrapAdminKey(): Promise<string | null> {
    const c = await this.pool.connect();
    let key: string | null = null;
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_LOCK]);
      const n = await c.query<{ n: string }>('SELECT count(*) AS n FROM api_keys WHERE admin AND revoked_at IS NULL');
      if (Number(n.rows[0]!.n) === 0) {
        const id = randomBytes(6).toString('hex');
        key = `vgk_${id}_${randomBytes(32).toString('base64url')}`;
        await c.query('INSERT INTO api_keys (id, name, hash, admin) VALUES ($1, $2, $3, true)', [id, 'admin', digest(key)]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
    if (key) {
      mkdirSync(this.o.dataDir, { recursive: true, mode: 0o700 });
      writeFileSync(adminKeyPath(this.o.dataDir), key + '\n', { mode: 0o600 });
      chmodSync(adminKeyPath(this.o.dataDir), 0o600);
    }
    return key;
  }

  async recordUsage(rows: readonly UsageRecord[]): Promise<void> {
    if (!rows.length) return;
    const col = <T>(f: (r: UsageRecord) => T): T[] => rows.map(f);
    await this.pool.query(
      `INSERT INTO usage_events (key_id, at, service, transport, model, provider, backend, region, requests, audio_seconds_in, chars_in, audio_seconds_out)
       SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::float8[], $11::int8[], $12::float8[])`,
      [
        col((r) => r.keyId),
        col((r) => r.at.toISOString()),
        col((r) => r.service),
        col((r) => r.transport),
        col((r) => r.model),
        col((r) => r.provider),
        col((r) => r.backend),
        col((r) => r.region),
        col((r) => r.requests),
        col((r) => r.audioSecondsIn),
        col((r) => Math.round(r.charsIn)),
        col((r) => r.audioSecondsOut),
      ],
    );
  }

  async usageTotals(keyId: string, since: Date): Promise<UsageTotals> {
    const r = await this.pool.query<{ requests: string; a_in: number; chars: string; a_out: number }>(
      'SELECT COALESCE(SUM(requests),0) AS requests, COALESCE(SUM(audio_seconds_in),0)::float8 AS a_in, COALESCE(SUM(chars_in),0) AS chars, COALESCE(SUM(audio_seconds_out),0)::float8 AS a_out FROM usage_events WHERE key_id = $1 AND at >= $2',
      [keyId, since.toISOString()],
    );
    const x = r.rows[0]!;
    return { requests: Number(x.requests), audioSecondsIn: Number(x.a_in), charsIn: Number(x.chars), audioSecondsOut: Number(x.a_out) };
  }

  async queryUsage(q: UsageQuery): Promise<UsageRow[]> {
    const where: string[] = [];
    const args: string[] = [];
    if (q.keyId) where.push(`key_id = $${args.push(q.keyId)}`);
    if (q.since) where.push(`at >= $${args.push(q.since.toISOString())}`);
    const r = await this.pool.query<{ key_id: string; service: 'stt' | 'tts'; model: string; provider: string; region: string; requests: string; a_in: number; chars: string; a_out: number }>(
      `SELECT key_id, service, model, provider, region, SUM(requests) AS requests, SUM(audio_seconds_in)::float8 AS a_in, SUM(chars_in) AS chars, SUM(audio_seconds_out)::float8 AS a_out
       FROM usage_events ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
       GROUP BY key_id, service, model, provider, region ORDER BY key_id, service, model, provider, region`,
      args,
    );
    return r.rows.map((x) => ({ keyId: x.key_id, service: x.service, model: x.model, provider: x.provider, region: x.region, requests: Number(x.requests), audioSecondsIn: Number(x.a_in), charsIn: Number(x.chars), audioSecondsOut: Number(x.a_out) }));
  }

  /** Close the pool (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await this.pool.end();
  }

  /** Drop every cached entry of key `id` (after a revocation or limits change made through this instance). */
  private forget(id: string): void {
    for (const [h, e] of this.cache) if (e.info.id === id) this.cache.delete(h);
  }
}
