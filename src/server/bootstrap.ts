/**
 * Start a complete gateway in this process: configuration, key store (with first-start admin key),
 * engines, listener. Used by `voxgate serve`, the tests and the benchmarks, so all three run the
 * same wiring.
 */
import pino, { type Logger } from 'pino';
import { loadConfig, type VoxgateConfig } from '../config/config.js';
import { createSttEngines } from '../engines/stt/registry.js';
import type { SttEngine } from '../engines/stt/types.js';
import { createTtsEngines } from '../engines/tts/registry.js';
import type { TtsEngine } from '../engines/tts/types.js';
import { KeyStore, adminKeyPath, resolveDataDir } from '../store/keys.js';
import { createGateway, type Gateway } from './server.js';

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
}

/** A started gateway and its parts. */
export interface RunningVoxgate {
  gateway: Gateway;
  port: number;
  url: string;
  dataDir: string;
  keys: KeyStore;
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
  const keys = new KeyStore(dataDir);
  const createdAdminKey = keys.ensureAdminKey();
  let engines: Map<string, SttEngine>;
  try {
    engines = await createSttEngines(config);
  } catch (err) {
    keys.close();
    throw err;
  }
  let ttsEngines: Map<string, TtsEngine>;
  try {
    ttsEngines = await createTtsEngines(config);
  } catch (err) {
    await Promise.all([...engines.values()].map((e) => e.shutdown()));
    keys.close();
    throw err;
  }
  const shutdownEngines = () => Promise.all([...engines.values(), ...ttsEngines.values()].map((e) => e.shutdown()));
  const gateway = createGateway({ config, engines, ttsEngines, keys, log });
  let port: number;
  try {
    port = await gateway.listen(o.port, o.host);
  } catch (err) {
    await shutdownEngines();
    keys.close();
    throw err;
  }
  let stopped = false;
  return {
    gateway,
    port,
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    dataDir,
    keys,
    engines,
    ttsEngines,
    config,
    log,
    createdAdminKey,
    adminKeyFile: adminKeyPath(dataDir),
    async stop() {
      if (stopped) return;
      stopped = true;
      await gateway.close();
      await shutdownEngines();
      keys.close();
    },
  };
}
