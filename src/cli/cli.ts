/**
 * The `voxgate` command (issue #2 "What a user does"):
 *
 *   voxgate serve [--port 8080] [--host 127.0.0.1] [--data-dir DIR] [--config FILE] [--drain-timeout MS] [--worker]
 *   voxgate transcribe FILE [--url URL] [--model CODE] [--key KEY] [--fast] [--json]
 *                           [--encoding linear16|mulaw|alaw] [--sample-rate HZ] [--channels N]
 *   voxgate keys create --name NAME [--admin] [--max-sessions N] [--rpm N] [--audio-seconds-per-day N]
 *                       [--audio-seconds-per-month N] [--chars-per-day N] [--chars-per-month N]
 *   voxgate keys list [--json] | keys revoke ID | keys limits ID [--<limit> N|none …] [--replace] [--json]
 *   voxgate usage [--key ID] [--since ISO|7d|12h] [--json]
 *   (keys/usage: [--data-dir DIR] [--config FILE] [--database-url URL] — SQLite in the data directory,
 *    or PostgreSQL when storage.url / --database-url / VOXGATE_DATABASE_URL is set; issue 12)
 *   voxgate speak [TEXT...] -o FILE [--voice V] [--model CODE] [--encoding E] [--sample-rate HZ] [--speed X] [--url URL]
 *   voxgate voices [--model CODE] [--language L] [--json] [--url URL]
 *
 * Environment: VOXGATE_PORT, VOXGATE_HOST, VOXGATE_DATA_DIR, VOXGATE_URL, VOXGATE_API_KEY,
 * VOXGATE_LOG_LEVEL, VOXGATE_DRAIN_TIMEOUT_MS, VOXGATE_DATABASE_URL, VOXGATE_REDIS_URL (shared live
 * state, issue 12), VOXGATE_ADVERTISE_URL (the URL a `--worker` announces).
 *
 * `serve` drains on SIGTERM/SIGINT (issue #14 item 4): new connections get 503, live sessions deliver
 * their pending finals and close 1001, in-flight HTTP requests finish, exit 0 — within
 * `--drain-timeout` ms (default `shutdown.drainTimeoutMs`, 10 000). A second signal exits at once (143).
 */
import { Command, InvalidArgumentError } from 'commander';
import { readSavedAdminKey, resolveDataDir, type KeyInfo, type KeyLimits } from '../store/keys.js';
import { openStore } from '../store/index.js';
import { LIMIT_FIELDS, type ApiKeyStore } from '../store/types.js';
import { loadConfig } from '../config/config.js';
import { parseSince } from '../server/usage_routes.js';
import { installShutdownHandlers, startVoxgate } from '../server/bootstrap.js';
import { transcribeFile } from './transcribe.js';
import { registerTtsCommands } from './tts_commands.js'; // TTS: `speak`, `voices` (issue #4)

function intArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

const program = new Command();
program.name('voxgate').description('Self-hostable real-time voice AI gateway').showHelpAfterError();

program
  .command('serve')
  .description('start the gateway (STT over WebSocket on the embedded engines)')
  .option('--port <port>', 'TCP port (env VOXGATE_PORT)', intArg('--port'), Number(process.env.VOXGATE_PORT ?? 8080))
  .option('--host <host>', 'interface to bind (env VOXGATE_HOST)', process.env.VOXGATE_HOST ?? '127.0.0.1')
  .option('--data-dir <dir>', 'where keys are stored (env VOXGATE_DATA_DIR)')
  .option('--config <file>', 'JSON config file with the model catalogue and limits')
  .option('--log-level <level>', 'pino log level (env VOXGATE_LOG_LEVEL)', process.env.VOXGATE_LOG_LEVEL ?? 'info')
  .option('--drain-timeout <ms>', 'on SIGTERM/SIGINT, ms live sessions get to deliver their last results before being closed (env VOXGATE_DRAIN_TIMEOUT_MS; default: config shutdown.drainTimeoutMs, 10000)', intArg('--drain-timeout'), process.env.VOXGATE_DRAIN_TIMEOUT_MS ? intArg('VOXGATE_DRAIN_TIMEOUT_MS')(process.env.VOXGATE_DRAIN_TIMEOUT_MS) : undefined)
  .option('--worker', 'register as an engine worker in the shared Redis (state.redisUrl / VOXGATE_REDIS_URL; config worker.*)', false)
  .action(async (o: { port: number; host: string; dataDir?: string; config?: string; logLevel: string; drainTimeout?: number; worker: boolean }) => {
    const v = await startVoxgate({ port: o.port, host: o.host, dataDir: o.dataDir, configFile: o.config, logLevel: o.logLevel, worker: o.worker });
    if (v.createdAdminKey) {
      process.stdout.write(
        `\nAdmin API key (shown once; saved for the local CLI in ${v.adminKeyFile}):\n\n  ${v.createdAdminKey}\n\n`,
      );
    }
    process.stdout.write(`voxgate listening on ${v.url}  (models: ${v.config.stt.models.map((m) => m.code).join(', ')}; TTS: ${v.config.tts.models.map((m) => m.code).join(', ')})\n`);
    installShutdownHandlers(v, { deadlineMs: o.drainTimeout });
  });

program
  .command('transcribe <file>')
  .description('stream an audio file (WAV, or raw PCM/mu-law/A-law) to a voxgate server and print transcripts')
  .option('--url <url>', 'server base URL (env VOXGATE_URL)', process.env.VOXGATE_URL ?? 'ws://127.0.0.1:8080')
  .option('--model <code>', 'model code from the catalogue', 'local/pocketsphinx:en')
  .option('--key <key>', 'API key (env VOXGATE_API_KEY; default: the admin key saved by `voxgate serve`)')
  .option('--data-dir <dir>', 'data directory holding the saved admin key')
  .option('--fast', 'send as fast as the server accepts instead of at real-time pace', false)
  .option('--json', 'print the server messages as JSON lines', false)
  .option('--encoding <enc>', 'encoding of a raw (headerless) file: linear16, mulaw, alaw', 'linear16')
  .option('--sample-rate <hz>', 'sample rate of a raw file', intArg('--sample-rate'), 16000)
  .option('--channels <n>', 'channels of a raw file', intArg('--channels'), 1)
  .option('--language <code>', 'language code', 'en')
  .action(async (file: string, o: { url: string; model: string; key?: string; dataDir?: string; fast: boolean; json: boolean; encoding: string; sampleRate: number; channels: number; language: string }) => {
    const key = o.key ?? process.env.VOXGATE_API_KEY ?? readSavedAdminKey(resolveDataDir(o.dataDir));
    if (!key) {
      process.stderr.write('no API key: pass --key, set VOXGATE_API_KEY, or run `voxgate serve` once on this machine\n');
      process.exit(2);
    }
    const code = await transcribeFile({ ...o, file, key, url: o.url.replace(/^http/, 'ws') });
    process.exit(code);
  });

/** Options every key/usage command takes: where the store is. */
interface StoreOpts {
  dataDir?: string;
  config?: string;
  databaseUrl?: string;
}

/**
 * Open the store the gateway uses (issue 12): `--database-url`, else the config file's `storage.url`,
 * else `VOXGATE_DATABASE_URL` → PostgreSQL; otherwise SQLite in the data directory.
 */
async function cliStore(o: StoreOpts): Promise<ApiKeyStore> {
  const storage = o.config ? loadConfig(o.config).storage : undefined;
  return openStore({ dataDir: resolveDataDir(o.dataDir), storage: { ...(storage ?? {}), ...(o.databaseUrl ? { url: o.databaseUrl } : {}) } });
}

/** Run `fn` on the store, closing it afterwards. */
async function withStore<T>(o: StoreOpts, fn: (s: ApiKeyStore) => Promise<T>): Promise<T> {
  const store = await cliStore(o);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A quota value: a non-negative number, or `none`/`unlimited` (CLI `keys limits`: remove it). */
function limitArg(flag: string, allowNone: boolean) {
  // commander turns a parser's null into '' — "none" is kept as the string and mapped by limitsOf.
  return (v: string): number | 'none' => {
    if (allowNone && /^(none|unlimited)$/i.test(v)) return 'none';
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a non-negative number${allowNone ? ' (or "none" to remove it)' : ''}`);
    return n;
  };
}

/** `--max-sessions` … `--chars-per-month`: one option per {@link KeyLimits} field. */
function limitOptions(cmd: Command, allowNone: boolean): Command {
  const help: Record<(typeof LIMIT_FIELDS)[number], string> = {
    maxSessions: 'concurrent sessions (STT + TTS, WebSocket and HTTP) across all gateways',
    rpm: 'new requests/sessions per minute',
    audioSecondsPerDay: 'STT audio seconds per UTC day',
    audioSecondsPerMonth: 'STT audio seconds per UTC calendar month',
    charsPerDay: 'TTS characters per UTC day',
    charsPerMonth: 'TTS characters per UTC calendar month',
  };
  for (const f of LIMIT_FIELDS) {
    const flag = '--' + f.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
    cmd.option(`${flag} <n>`, help[f] + (allowNone ? ' ("none" removes it)' : ''), limitArg(flag, allowNone));
  }
  return cmd;
}

/** The limits given on the command line. */
function limitsOf(o: Record<string, unknown>): { [K in keyof KeyLimits]?: number | null } {
  const out: Record<string, number | null> = {};
  for (const f of LIMIT_FIELDS) if (o[f] !== undefined) out[f] = o[f] === 'none' ? null : (o[f] as number);
  return out;
}

/** `rpm=60 maxSessions=3` (or `unlimited`). */
function describeLimits(l: KeyLimits): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : 'unlimited';
}

/** Add `--data-dir`, `--config`, `--database-url` to a key/usage command. */
function storeOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'data directory (SQLite store; env VOXGATE_DATA_DIR)')
    .option('--config <file>', 'gateway config file (its storage.url selects PostgreSQL)')
    .option('--database-url <url>', 'PostgreSQL URL (env VOXGATE_DATABASE_URL)');
}

const keys = program.command('keys').description('manage API keys and their quotas (SQLite data directory, or PostgreSQL)');
limitOptions(storeOptions(keys.command('create')), false)
  .description('create an API key and print it (only time it is shown)')
  .requiredOption('--name <name>', 'a label for the key')
  .option('--admin', 'an admin key (may read any key\'s usage)', false)
  .action(async (o: StoreOpts & { name: string; admin: boolean } & Record<string, unknown>) => {
    const limits = limitsOf(o) as KeyLimits;
    const { key, info } = await withStore(o, (s) => s.createKey(o.name, { admin: o.admin, limits }));
    process.stdout.write(`${key}\n`);
    process.stderr.write(`created key ${info.id} ("${info.name}"; ${describeLimits(info.limits)})\n`);
  });
storeOptions(keys.command('list'))
  .description('list keys (never their secrets)')
  .option('--json', 'JSON output', false)
  .action(async (o: StoreOpts & { json: boolean }) => {
    const list = await withStore(o, (s) => s.listKeys());
    if (o.json) {
      process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      return;
    }
    const rows = [['ID', 'NAME', 'CREATED', 'LAST USED', 'STATUS', 'LIMITS']];
    for (const k of list) rows.push([k.id, k.name + (k.admin ? ' (admin)' : ''), k.createdAt, k.lastUsedAt ?? '-', k.revokedAt ? `revoked ${k.revokedAt}` : 'active', describeLimits(k.limits)]);
    printTable(rows);
  });
storeOptions(keys.command('revoke <id>'))
  .description('revoke a key by id (every gateway refuses it within seconds)')
  .action(async (id: string, o: StoreOpts) => {
    const ok = await withStore(o, (s) => s.revokeKey(id));
    if (!ok) {
      process.stderr.write(`no active key with id ${id}\n`);
      process.exit(1);
    }
    process.stdout.write(`revoked ${id}\n`);
  });
limitOptions(storeOptions(keys.command('limits <id>')), true)
  .description('show or change a key\'s quotas (given ones are set, "none" removes one; --replace drops the others)')
  .option('--replace', 'replace all quotas with the given ones', false)
  .option('--json', 'JSON output', false)
  .action(async (id: string, o: StoreOpts & { replace: boolean; json: boolean } & Record<string, unknown>) => {
    const upd = limitsOf(o);
    const info: KeyInfo | null = await withStore(o, (s) => (Object.keys(upd).length || o.replace ? s.updateLimits(id, upd, o.replace) : s.getKey(id)));
    if (!info) {
      process.stderr.write(`no key with id ${id}\n`);
      process.exit(1);
    }
    process.stdout.write(o.json ? JSON.stringify(info.limits) + '\n' : `${info.id} ("${info.name}"): ${describeLimits(info.limits)}\n`);
  });

storeOptions(program.command('usage'))
  .description('usage per key, service, model, provider and region (STT audio seconds in, TTS characters in and audio seconds out)')
  .option('--key <id>', 'only this key')
  .option('--since <when>', 'ISO-8601 time, or relative: 7d, 12h, 30m (default: start of the current UTC month)')
  .option('--json', 'JSON output', false)
  .action(async (o: StoreOpts & { key?: string; since?: string; json: boolean }) => {
    const now = new Date();
    const since = o.since ? parseSince(o.since, now) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    if (!since) throw new InvalidArgumentError(`--since ${o.since}: neither an ISO-8601 time nor a relative 7d/12h/30m`);
    const { rows, names } = await withStore(o, async (s) => ({ rows: await s.queryUsage({ keyId: o.key, since }), names: new Map((await s.listKeys()).map((k) => [k.id, k.name])) }));
    if (o.json) {
      process.stdout.write(JSON.stringify({ since: since.toISOString(), rows: rows.map((r) => ({ ...r, keyName: names.get(r.keyId) ?? null })) }, null, 2) + '\n');
      return;
    }
    const table = [['KEY', 'NAME', 'SERVICE', 'MODEL', 'PROVIDER', 'REGION', 'REQUESTS', 'AUDIO IN (s)', 'CHARS IN', 'AUDIO OUT (s)']];
    for (const r of rows) table.push([r.keyId, names.get(r.keyId) ?? '?', r.service, r.model, r.provider, r.region, String(r.requests), r.audioSecondsIn.toFixed(1), String(r.charsIn), r.audioSecondsOut.toFixed(1)]);
    process.stdout.write(`usage since ${since.toISOString()}\n`);
    printTable(table);
  });

/** Print rows as left-aligned columns. */
function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
}

registerTtsCommands(program); // TTS

await program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`voxgate: ${err.message}\n`);
  process.exit(1);
});
