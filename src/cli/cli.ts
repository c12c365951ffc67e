/**
 * The `voxgate` command (issue #2 "What a user does"):
 *
 *   voxgate serve [--port 8080] [--host 127.0.0.1] [--data-dir DIR] [--config FILE] [--drain-timeout MS] [--worker]
 *   voxgate transcribe FILE [--url URL] [--model CODE] [--key KEY] [--fast] [--json]
 *                           [--encoding linear16|mulaw|alaw] [--sample-rate HZ] [--channels N]
 *   voxgate keys create --name NAME | keys list | keys revoke ID
 *   voxgate speak [TEXT...] -o FILE [--voice V] [--model CODE] [--encoding E] [--sample-rate HZ] [--speed X] [--url URL]
 *   voxgate voices [--model CODE] [--language L] [--json] [--url URL]
 *
 * Environment: VOXGATE_PORT, VOXGATE_HOST, VOXGATE_DATA_DIR, VOXGATE_URL, VOXGATE_API_KEY,
 * VOXGATE_LOG_LEVEL, VOXGATE_DRAIN_TIMEOUT_MS, VOXGATE_REDIS_URL (shared live state, issue 12),
 * VOXGATE_ADVERTISE_URL (the URL a `--worker` announces).
 *
 * `serve` drains on SIGTERM/SIGINT (issue #14 item 4): new connections get 503, live sessions deliver
 * their pending finals and close 1001, in-flight HTTP requests finish, exit 0 — within
 * `--drain-timeout` ms (default `shutdown.drainTimeoutMs`, 10 000). A second signal exits at once (143).
 */
import { Command, InvalidArgumentError } from 'commander';
import { KeyStore, readSavedAdminKey, resolveDataDir } from '../store/keys.js';
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

const keys = program.command('keys').description('manage API keys in the local data directory');
keys
  .command('create')
  .description('create an API key and print it (only time it is shown)')
  .requiredOption('--name <name>', 'a label for the key')
  .option('--data-dir <dir>', 'data directory')
  .action((o: { name: string; dataDir?: string }) => {
    const store = new KeyStore(resolveDataDir(o.dataDir));
    const { key, info } = store.create(o.name);
    store.close();
    process.stdout.write(`${key}\n`);
    process.stderr.write(`created key ${info.id} ("${info.name}")\n`);
  });
keys
  .command('list')
  .description('list keys (never their secrets)')
  .option('--data-dir <dir>', 'data directory')
  .option('--json', 'JSON output', false)
  .action((o: { dataDir?: string; json: boolean }) => {
    const store = new KeyStore(resolveDataDir(o.dataDir));
    const list = store.list();
    store.close();
    if (o.json) {
      process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      return;
    }
    const rows = [['ID', 'NAME', 'CREATED', 'LAST USED', 'STATUS']];
    for (const k of list) rows.push([k.id, k.name + (k.admin ? ' (admin)' : ''), k.createdAt, k.lastUsedAt ?? '-', k.revokedAt ? `revoked ${k.revokedAt}` : 'active']);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
  });
keys
  .command('revoke <id>')
  .description('revoke a key by id')
  .option('--data-dir <dir>', 'data directory')
  .action((id: string, o: { dataDir?: string }) => {
    const store = new KeyStore(resolveDataDir(o.dataDir));
    const ok = store.revoke(id);
    store.close();
    if (!ok) {
      process.stderr.write(`no active key with id ${id}\n`);
      process.exit(1);
    }
    process.stdout.write(`revoked ${id}\n`);
  });

registerTtsCommands(program); // TTS

await program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`voxgate: ${err.message}\n`);
  process.exit(1);
});
