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

/** SQLite-backed key store. All methods are synchronous (better-sqlite3) and take microseconds. */
export class KeyStore {
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

  close(): void {
    this.db.close();
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
