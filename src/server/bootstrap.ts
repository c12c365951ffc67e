/**
 * Start a complete gateway in this process: configuration, key store (with first-start admin key),
 * engines, listener. Used by `voxgate serve`, the tests and the benchmarks, so all three run the
 * same wiring.
 */
import pino, { type Logger } from 'pino';
import { DEFAULT_DRAIN_TIMEOUT_MS, loadConfig, type VoxgateConfig } from '../config/config.js';
import { createSttEngines } from '../engines/stt/registry.js';
import type { SttEngine } from '../engines/stt/types.js';
import { createTtsEngines } from '../engines/tts/registry.js';
import type { TtsEngine } from '../engines/tts/types.js';
import { KeyStore, adminKeyPath, resolveDataDir } from '../store/keys.js';
import { openStore } from '../store/index.js';
import type { ApiKeyStore } from '../store/types.js';
import { UsageMeter } from '../store/usage.js';
import { createGateway, type DrainReport, type Gateway } from './server.js';
import { trimNativeHeap } from '../engines/stt/pocketsphinx/native.js';
import { WorkerAnnouncer } from '../state/workers.js';

/** Options of {@link startVoxgate}. */
export interface StartOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  host: string;
  /** Data directory (see `resolveDataDir`). */
  dataDir?: string;
  /** Path of a JSON config file; omitted = built-in catalogue. */
  configFile?: string;
  /** Already-resolved config (tests); wins over `configFile`. */
  config?: VoxgateConfig;
  /** pino level: `info` by default; `silent` in tests. */
  logLevel?: string;
  /** Register as an engine worker in the shared Redis (`voxgate serve --worker`; same as config `worker.register`). */
  worker?: boolean;
}

/** A started gateway and its parts. */
export interface RunningVoxgate {
  gateway: Gateway;
  port: number;
  url: string;
  dataDir: string;
  /**
   * The SQLite key store with its synchronous API (tests, benchmarks) — only when no database URL is
   * configured. With Postgres (issue 12) every use of it throws, pointing at {@link store}.
   */
  keys: KeyStore;
  /** The key/usage store the gateway uses: SQLite (the same object as `keys`) or Postgres (issue 12). */
  store: ApiKeyStore;
  /** Usage metering of this instance (issue 12): `flush()` writes the buffered rows now. */
  meter: UsageMeter;
  engines: Map<string, SttEngine>;
  /** TTS engines (issue #4). */
  ttsEngines: Map<string, TtsEngine>;
  config: VoxgateConfig;
  log: Logger;
  /** The admin key when this start created it (first start), else null. Print it once. */
  createdAdminKey: string | null;
  adminKeyFile: string;
  /** Close sessions, the listener, engines and the store. */
  stop(): Promise<void>;
  /**
   * Graceful shutdown (issue #14 item 4): {@link Gateway.drain} (sessions deliver their pending
   * finals and closing messages, then close 1001; in-flight HTTP requests finish), then engines and
   * the store are shut down. Idempotent.
   * @param deadlineMs default: `config.shutdown.drainTimeoutMs` (10 000 ms).
   */
  drain(deadlineMs?: number): Promise<DrainReport>;
}

/** Options of {@link installShutdownHandlers}. */
export interface ShutdownHandlerOptions {
  /** Drain deadline, ms; default `config.shutdown.drainTimeoutMs`. */
  deadlineMs?: number;
  /** Exit the process (default `process.exit`). */
  exit?: (code: number) => void;
}

/** Period of the freed-memory return (`malloc_trim`) while sessions are open, ms. */
export const TRIM_INTERVAL_MS = 5_000;

/** Exit code of a second SIGTERM/SIGINT during a drain: 128 + SIGTERM's number (15), as a killed process. */
export const FORCED_EXIT_CODE = 143;

/**
 * Wire SIGTERM and SIGINT to a graceful drain (issue #14 item 4): the first signal starts
 * `v.drain()` and exits 0 once it is done (1 if the drain itself threw); a second signal while
 * draining exits at once with {@link FORCED_EXIT_CODE} (143), dropping whatever was still draining.
 * @returns a function removing the handlers.
 */
export function installShutdownHandlers(v: RunningVoxgate, o: ShutdownHandlerOptions = {}): () => void {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let draining = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (draining) {
      v.log.warn({ signal: sig }, 'second signal while draining: exiting now');
      exit(FORCED_EXIT_CODE);
      return;
    }
    draining = true;
    v.log.info({ signal: sig }, 'shutting down: draining live sessions');
    v.drain(o.deadlineMs).then(
      () => exit(0),
      (err: Error) => {
        v.log.error({ err: err.message }, 'drain failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}

/**
 * Start voxgate.
 * @throws Error when the config is invalid, the data directory is unwritable, an engine fails to
 *   load (e.g. missing Debian model packages) or the port is taken.
 */
export async function startVoxgate(o: StartOptions): Promise<RunningVoxgate> {
  const log = pino({ level: o.logLevel ?? 'info', redact: ['req.headers.authorization', 'headers.authorization'] });
  const config = o.config ?? loadConfig(o.configFile);
  const dataDir = resolveDataDir(o.dataDir);
  // issue 12: Postgres when storage.url / VOXGATE_DATABASE_URL is set (migrated here), else SQLite.
  const store = await openStore({ dataDir, storage: config.storage, onError: (err) => log.warn({ err: err.message }, 'key store connection error') });
  const keys = store instanceof KeyStore ? store : postgresOnly();
  const meter = new UsageMeter(store, { flushMs: config.storage?.usageFlushMs, quotaCacheMs: config.storage?.quotaCacheMs, log });
  const closeStore = async () => {
    await meter.close();
    await store.close();
  };
  let createdAdminKey: string | null;
  try {
    createdAdminKey = await store.bootstrapAdminKey();
  } catch (err) {
    await closeStore();
    throw err;
  }
  if (store.kind === 'postgres') log.info({ url_set_by: config.storage?.url ? 'storage.url' : 'VOXGATE_DATABASE_URL' }, 'keys, quotas and usage in PostgreSQL');
  let engines: Map<string, SttEngine>;
  try {
    engines = await createSttEngines(config);
  } catch (err) {
    await closeStore();
    throw err;
  }
  let ttsEngines: Map<string, TtsEngine>;
  try {
    ttsEngines = await createTtsEngines(config);
  } catch (err) {
    await Promise.all([...engines.values()].map((e) => e.shutdown()));
    await closeStore();
    throw err;
  }
  const shutdownEngines = () => Promise.all([...engines.values(), ...ttsEngines.values()].map((e) => e.shutdown()));
  const gateway = createGateway({ config, engines, ttsEngines, keys: store, meter, log });
  let port: number;
  try {
    port = await gateway.listen(o.port, o.host);
  } catch (err) {
    await shutdownEngines();
    await closeStore();
    throw err;
  }
  // Memory hygiene for relayed sessions: every audio frame a gateway relays is a short-lived
  // malloc'd buffer, and glibc keeps freed pages resident (measured: 500 relayed sessions, 8 s of
  // audio → +52 KiB RSS per session that malloc_trim returns; the live heap stays 25 KiB). While
  // sessions are open, return them every TRIM_INTERVAL_MS (on a pool thread, a few ms).
  const trimTimer = setInterval(() => {
    if (gateway.sessionCount() > 0) trimNativeHeap().catch(() => undefined);
  }, TRIM_INTERVAL_MS);
  trimTimer.unref();
  // Issue 12: an engine worker announces itself (region, models, load) in the shared Redis.
  const announcer = startAnnouncer(config, gateway, engines, o, port, log);
  let stopped = false;
  let drained: Promise<DrainReport> | null = null;
  return {
    gateway,
    port,
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    dataDir,
    keys,
    store,
    meter,
    engines,
    ttsEngines,
    config,
    log,
    createdAdminKey,
    adminKeyFile: adminKeyPath(dataDir),
    async stop() {
      if (drained) {
        await drained;
        return;
      }
      if (stopped) return;
      stopped = true;
      clearInterval(trimTimer);
      await announcer?.stop();
      await gateway.close();
      await shutdownEngines();
      await closeStore();
    },
    drain(deadlineMs) {
      drained ??= (async () => {
        clearInterval(trimTimer);
        await announcer?.markDraining(); // gateways stop picking it before its listener closes
        const done = gateway.drain(deadlineMs ?? config.shutdown?.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
        await announcer?.stop();
        const report = await done;

        if (!stopped) {
          stopped = true;
          await shutdownEngines();
          await closeStore();
        }
        return report;
      })();
      return drained;
    },
  };
}

/**
 * The `keys` of a gateway on Postgres: the synchronous SQLite API does not exist there, so any use
 * throws a clear error instead of silently touching a local file the gateway does not read.
 */
function postgresOnly(): KeyStore {
  return new Proxy({} as KeyStore, {
    get(_t, prop) {
      if (prop === 'then') return undefined;
      throw new Error(`RunningVoxgate.keys.${String(prop)}: keys live in PostgreSQL (storage.url); use the async RunningVoxgate.store`);
    },
  });
}

/**
 * The worker announcer when this instance registers (`worker.register` or `--worker`; issue 12):
 * needs `state.redisUrl`. Load = open sessions / (open sessions + free STT engine streams).
 * @throws Error when registration is asked for without a Redis.
 */
function startAnnouncer(config: VoxgateConfig, gateway: Gateway, engines: Map<string, SttEngine>, o: StartOptions, port: number, log: Logger): WorkerAnnouncer | null {
  const w = config.worker;
  if (!(o.worker || w?.register)) return null;
  const link = gateway.live.link;
  if (!link) throw new Error('worker registration needs a shared Redis: set state.redisUrl or VOXGATE_REDIS_URL');
  const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const url = w?.advertiseUrl ?? process.env.VOXGATE_ADVERTISE_URL ?? `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const a = new WorkerAnnouncer(
    link,
    config.state?.keyPrefix ?? 'voxgate:',
    { id: gateway.live.instanceId, url, region: w?.region ?? config.gateway.region, stt: config.stt.models.map((m) => m.code), tts: config.tts.models.map((m) => m.code) },
    () => {
      let free: number | undefined;
      for (const e of engines.values()) {
        const f = e.freeStreams?.();
        if (f !== undefined) free = (free ?? 0) + f;
      }
      return { sessions: gateway.sessionCount(), freeStreams: free };
    },
    w?.intervalMs ?? 2500,
    w?.fullAt ?? 0.9,
    log,
  );
  log.info({ url, region: w?.region ?? config.gateway.region }, 'registering as an engine worker');
  return a;
}
