/**
 * Which key/usage store to open (issue 12): PostgreSQL when a database URL is configured
 * (`storage.url` in the config file, else env `VOXGATE_DATABASE_URL`), else the embedded SQLite
 * store in the data directory (the single-box default, no server to start). The gateway
 * (`startVoxgate`) and the CLI (`voxgate keys …`, `voxgate usage`) both open it through here.
 */
import type { StorageConfig } from '../config/config.js';
import { KeyStore } from './keys.js';
import { PgKeyStore } from './postgres.js';
import type { ApiKeyStore } from './types.js';

export type { ApiKeyStore } from './types.js';

/** The database URL in effect: `storage.url`, else `$VOXGATE_DATABASE_URL`, else undefined (SQLite). */
export function databaseUrl(storage?: Partial<StorageConfig>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const u = storage?.url ?? env.VOXGATE_DATABASE_URL;
  return u && u.trim() ? u.trim() : undefined;
}

/** The URL with its password replaced by `***` (for logs and messages). */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** Data directory (SQLite file; where the first-start admin key is saved). */
  dataDir: string;
  /** The `storage` config section (defaults apply to absent fields). */
  storage?: Partial<StorageConfig>;
  /** Errors of idle database connections (Postgres). */
  onError?: (err: Error) => void;
}

/**
 * Open the configured store. With Postgres, migrations are applied first (see src/store/postgres.ts).
 * @throws when the database cannot be reached or migrated, or the data directory is unwritable.
 */
export async function openStore(o: OpenStoreOptions): Promise<ApiKeyStore> {
  const url = databaseUrl(o.storage);
  if (!url) return new KeyStore(o.dataDir);
  return PgKeyStore.open({ url, dataDir: o.dataDir, cacheTtlMs: o.storage?.keyCacheTtlMs, onError: o.onError });
}
