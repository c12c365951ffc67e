/**
 * API keys in an embedded SQLite store (`better-sqlite3`), issue #2 "Auth on the upgrade".
 *
 * A key looks like `vgk_<id>_<secret>`: `id` (12 hex chars) is a public lookup handle, `secret`
 * is 32 random bytes (base64url). Only SHA-256 of the whole key is stored. Verification fetches the
 * row by `id` and compares digests with `crypto.timingSafeEqual`, so the comparison is constant-time
 * and the database index never sees secret material. Keys are never logged; only `id` and `name` are.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { mergeLimits, type ApiKeyStore, type UsageQuery, type UsageRecord, type UsageRow, type UsageTotals } from './types.js';

/** Public metadata of a key (never the secret or its hash). Times are ISO-8601 strings. */
export interface KeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  admin: boolean;
  /** Quotas of this key (issue 12); every field absent = unlimited. */
  limits: KeyLimits;
}

/**
 * Per-key quotas (issue 12 "Quotas and usage metering"). Absent fields are unlimited. Exceeding one
 * gets the dialect's `rate_limit` / HTTP 429 before any backend is dialled.
 */
export interface KeyLimits {
  /** Concurrent sessions (STT + TTS, WebSocket and HTTP) across every gateway sharing the state. */
  maxSessions?: number;
  /** New requests/sessions per minute. */
  rpm?: number;
  /** Seconds of STT audio in, per UTC day / calendar month. */
  audioSecondsPerDay?: number;
  audioSecondsPerMonth?: number;
  /** Characters of TTS text in, per UTC day / calendar month. */
  charsPerDay?: number;
  charsPerMonth?: number;
}

const KEY_RE = /^vgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * The data directory: `--data-dir`, else `$VOXGATE_DATA_DIR`, else `$XDG_DATA_HOME/voxgate`,
 * else `~/.local/share/voxgate`. The CLI and the server resolve it the same way, which is how the CLI
 * on the same machine finds the admin key.
 */
export function resolveDataDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  if (process.env.VOXGATE_DATA_DIR) return path.resolve(process.env.VOXGATE_DATA_DIR);
  const xdg = process.env.XDG_DATA_HOME || path.join(homedir(), '.local', 'share');
  return path.join(xdg, 'voxgate');
}

/** Path of the file holding the admin key for local CLI use (mode 0600). */
export function adminKeyPath(dataDir: string): string {
  return path.join(dataDir, 'admin.key');
}

/** Read the locally saved admin key, or `null` when there is none. */
export function readSavedAdminKey(dataDir: string): string | null {
  try {
    const k = readFileSync(adminKeyPath(dataDir), 'utf8').trim();
    return k.length > 0 ? k : null;
  } catch {
    return null;
  }
}

/**
 * SQLite-backed key store, the single-box default. The original methods (`create`, `verify`, `list`,
 * `revoke`, `ensureAdminKey`) are synchronous (better-sqlite3) and take microseconds; the
 * {@link ApiKeyStore} methods (issue 12) wrap them, and add quotas updates and usage rows
 * (table `usage_events`, same columns as the Postgres store).
 */
export class KeyStore implements ApiKeyStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;

  /** Open (creating if needed) `<dataDir>/voxgate.db`. @throws on an unwritable directory. */
  constructor(readonly dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(path.join(dataDir, 'voxgate.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 2000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS api_keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      hash BLOB NOT NULL,
      admin INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL,
      last_used_at TEXT,
      revoked_at TEXT
    )`);
    // Issue 12: per-key quotas as JSON (databases created before it lack the column).
    const cols = this.db.prepare('PRAGMA table_info(api_keys)').all() as { name: string }[];
    if (!cols.some((c) => c.name === 'limits')) this.db.exec("ALTER TABLE api_keys ADD COLUMN limits TEXT NOT NULL DEFAULT '{}'");
    // Issue 12: usage metering, one append-only row per request/session (times: epoch ms).
    this.db.exec(`CREATE TABLE IF NOT EXISTS usage_events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      key_id TEXT NOT NULL,
      at_ms INTEGER NOT NULL,
      service TEXT NOT NULL,
      transport TEXT NOT NULL,
      model TEXT NOT NULL,
      provider TEXT NOT NULL,
      backend TEXT NOT NULL,
      region TEXT NOT NULL,
      requests INTEGER NOT NULL,
      audio_seconds_in REAL NOT NULL,
      chars_in INTEGER NOT NULL,
      audio_seconds_out REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS usage_events_key_at ON usage_events (key_id, at_ms);
    CREATE INDEX IF NOT EXISTS usage_events_at ON usage_events (at_ms)`);
  }

  // ---- ApiKeyStore (issue 12) ----

  /** {@link ApiKeyStore.createKey} over {@link create}. */
  async createKey(name: string, opts: { admin?: boolean; limits?: KeyLimits } = {}): Promise<{ key: string; info: KeyInfo }> {
    return this.create(name, opts);
  }

  /** {@link ApiKeyStore.verifyKey} over {@link verify} (no cache: SQLite answers in microseconds, so a revocation applies at once). */
  async verifyKey(presented: string): Promise<KeyInfo | null> {
    return this.verify(presented);
  }

  /** {@link ApiKeyStore.getKey}. */
  async getKey(id: string): Promise<KeyInfo | null> {
    const row = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return row ? toInfo(row) : null;
  }

  /** {@link ApiKeyStore.listKeys} over {@link list}. */
  async listKeys(): Promise<KeyInfo[]> {
    return this.list();
  }

  /** {@link ApiKeyStore.revokeKey} over {@link revoke}. */
  async revokeKey(idOrKey: string): Promise<boolean> {
    return this.revoke(idOrKey);
  }

  /** {@link ApiKeyStore.updateLimits}: read, merge, write in one SQLite transaction. */
  async updateLimits(id: string, limits: { [K in keyof KeyLimits]?: number | null }, replace = false): Promise<KeyInfo | null> {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
      if (!row) return null;
      const next = mergeLimits(parseLimits(row.limits), limits, replace);
      this.db.prepare('UPDATE api_keys SET limits = ? WHERE id = ?').run(JSON.stringify(next), id);
      return toInfo({ ...row, limits: JSON.stringify(next) });
    })();
  }

  /** {@link ApiKeyStore.bootstrapAdminKey} over {@link ensureAdminKey}. */
  async bootstrapAdminKey(): Promise<string | null> {
    return this.ensureAdminKey();
  }

  /** {@link ApiKeyStore.recordUsage}: one transaction per batch. */
  async recordUsage(rows: readonly UsageRecord[]): Promise<void> {
    if (!rows.length) return;
    const ins = this.db.prepare(
      'INSERT INTO usage_events (key_id, at_ms, service, transport, model, provider, backend, region, requests, audio_seconds_in, chars_in, audio_seconds_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const r of rows) ins.run(r.keyId, r.at.getTime(), r.service, r.transport, r.model, r.provider, r.backend, r.region, r.requests, r.audioSecondsIn, Math.round(r.charsIn), r.audioSecondsOut);
    })();
  }

  /** {@link ApiKeyStore.usageTotals}. */
  async usageTotals(keyId: string, since: Date): Promise<UsageTotals> {
    const r = this.db
      .prepare('SELECT COALESCE(SUM(requests),0) AS requests, COALESCE(SUM(audio_seconds_in),0) AS a_in, COALESCE(SUM(chars_in),0) AS chars, COALESCE(SUM(audio_seconds_out),0) AS a_out FROM usage_events WHERE key_id = ? AND at_ms >= ?')
      .get(keyId, since.getTime()) as { requests: number; a_in: number; chars: number; a_out: number };
    return { requests: r.requests, audioSecondsIn: r.a_in, charsIn: r.chars, audioSecondsOut: r.a_out };
  }

  /** {@link ApiKeyStore.queryUsage}. */
  async queryUsage(q: UsageQuery): Promise<UsageRow[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.keyId) {
      where.push('key_id = ?');
      args.push(q.keyId);
    }
    if (q.since) {
      where.push('at_ms >= ?');
      args.push(q.since.getTime());
    }
    const rows = this.db
      .prepare(
        `SELECT key_id, service, model, provider, region, SUM(requests) AS requests, SUM(audio_seconds_in) AS a_in, SUM(chars_in) AS chars, SUM(audio_seconds_out) AS a_out
         FROM usage_events ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
         GROUP BY key_id, service, model, provider, region ORDER BY key_id, service, model, provider, region`,
      )
      .all(...args) as { key_id: string; service: 'stt' | 'tts'; model: string; provider: string; region: string; requests: number; a_in: number; chars: number; a_out: number }[];
    return rows.map((r) => ({ keyId: r.key_id, service: r.service, model: r.model, provider: r.provider, region: r.region, requests: r.requests, audioSecondsIn: r.a_in, charsIn: r.chars, audioSecondsOut: r.a_out }));
  }

  /**
   * Create a key. Returns the plaintext key — the only time it exists outside the caller — and its info.
   */
  create(name: string, opts: { admin?: boolean; limits?: KeyLimits } = {}): { key: string; info: KeyInfo } {
    const id = randomBytes(6).toString('hex');
    const key = `vgk_${id}_${randomBytes(32).toString('base64url')}`;
    const createdAt = new Date().toISOString();
    this.db
      .prepare('INSERT INTO api_keys (id, name, hash, admin, created_at, limits) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, name, digest(key), opts.admin ? 1 : 0, createdAt, JSON.stringify(opts.limits ?? {}));
    return { key, info: { id, name, createdAt, lastUsedAt: null, revokedAt: null, admin: !!opts.admin, limits: { ...(opts.limits ?? {}) } } };
  }

  /**
   * Verify a presented key. Constant-time digest comparison; revoked keys fail.
   * On success records `last_used_at` and returns the key's info; otherwise `null`.
   */
  verify(presented: string): KeyInfo | null {
    const m = KEY_RE.exec(presented);
    // Hash even malformed input so the failure path costs about the same as the success path.
    const got = digest(presented);
    if (!m) return null;
    const row = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(m[1]) as Row | undefined;
    if (!row || row.revoked_at) return null;
    if (!timingSafeEqual(got, row.hash)) return null;
    const now = new Date().toISOString();
    this.db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(now, row.id);
    return toInfo({ ...row, last_used_at: now });
  }

  /** All keys, newest first, revoked ones included. */
  list(): KeyInfo[] {
    return (this.db.prepare('SELECT * FROM api_keys ORDER BY created_at DESC').all() as Row[]).map(toInfo);
  }

  /** Revoke by id (or by full key). Returns false when no active key matched. */
  revoke(idOrKey: string): boolean {
    const id = KEY_RE.exec(idOrKey)?.[1] ?? idOrKey;
    const r = this.db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(new Date().toISOString(), id);
    return r.changes > 0;
  }

  /** Number of active (non-revoked) keys. */
  activeCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL').get() as { n: number }).n;
  }

  /**
   * First-start bootstrap: when no active admin key exists, create one, save it to
   * {@link adminKeyPath} (0600) for the local CLI, and return it so the caller can print it once.
   * Returns `null` when an admin key already exists.
   */
  ensureAdminKey(): string | null {
    const n = (this.db.prepare('SELECT COUNT(*) AS n FROM api_keys WHERE admin = 1 AND revoked_at IS NULL').get() as { n: number }).n;
    if (n > 0) return null;
    const { key } = this.create('admin', { admin: true });
    writeFileSync(adminKeyPath(this.dataDir), key + '\n', { mode: 0o600 });
    chmodSync(adminKeyPath(this.dataDir), 0o600);
    return key;
  }

  /** Close the database (idempotent). Returns a resolved promise so it also serves as {@link ApiKeyStore.close}. */
  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}

interface Row {
  id: string;
  name: string;
  hash: Buffer;
  admin: number;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  limits: string;
}

function parseLimits(j: string | null | undefined): KeyLimits {
  try {
    const v = JSON.parse(j ?? '{}') as unknown;
    return v && typeof v === 'object' ? (v as KeyLimits) : {};
  } catch {
    return {};
  }
}

function toInfo(r: Row): KeyInfo {
  return { id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at, admin: r.admin === 1, limits: parseLimits(r.limits) };
}
