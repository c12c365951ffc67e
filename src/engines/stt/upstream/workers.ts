/**
 * Engine type `workers` (issue 12 "Engine workers that register"): a placeholder for "the registered
 * voxgate workers of this instance's region that serve `model`". The gateway's router
 * (src/server/router.ts) replaces it, per request, by the registered workers (src/state/workers.ts)
 * as `slng` backends, least loaded first. Settings are those of a `slng` instance without `url`
 * (each worker announces its own): `{type: "workers", region, model, apiKeyEnv, …}` — the key the
 * gateways present to the workers is read from `apiKeyEnv`.
 *
 * The placeholder itself only runs when no worker is available (none registered, all full, or no
 * Redis): its `start` fails with a retryable `backend_connection_failed`, so failover moves on to the
 * model's next backend or the client is told.
 */
import type { VoxgateConfig } from '../../../config/config.js';
import { VoxgateError } from '../../../util/errors.js';
import type { SttCapabilities, SttEngine, SttEngineStats, SttStream } from '../types.js';
import { createSlngSttEngine, type SlngSettings } from './slng.js';

/** The URL placed in a `workers` instance's settings for validation only (never dialled). */
const PLACEHOLDER_URL = 'ws://registered-worker.invalid';

/**
 * The `slng` settings of a `workers` instance with `url` (a worker's `advertiseUrl`) filled in.
 * @param extra more fields (e.g. `region` of the worker).
 */
export function workerInstanceSettings(cfg: VoxgateConfig, poolId: string, url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...(cfg.engines[poolId] ?? {}), type: 'slng', url, ...extra };
}

/** The placeholder engine (module docs). */
export class WorkersPlaceholderEngine implements SttEngine {
  readonly capabilities: SttCapabilities;
  readonly version: string;
  constructor(
    readonly id: string,
    readonly model: string,
    capabilities: SttCapabilities,
  ) {
    this.capabilities = capabilities;
    this.version = model;
  }
  async init(): Promise<void> {}
  /** @throws VoxgateError `backend_connection_failed` (retryable): no registered worker is available. */
  async start(): Promise<SttStream> {
    throw new VoxgateError('backend_connection_failed', `no registered worker is available for ${this.model} (engines.${this.id}: none announced in Redis, all full, or Redis not configured)`, { retryable: true });
  }
  stats(): SttEngineStats {
    return { activeStreams: 0, idleDecoders: 0, busyDecoders: 0 };
  }
  async shutdown(): Promise<void> {}
}

/**
 * Registry factory of type `workers`.
 * @throws Error naming the instance when its settings are not valid `slng` settings (without `url`).
 */
export function createWorkersSttEngine(cfg: VoxgateConfig, instanceId: string): WorkersPlaceholderEngine {
  const probe = createSlngSttEngine({ ...cfg, engines: { ...cfg.engines, [instanceId]: workerInstanceSettings(cfg, instanceId, PLACEHOLDER_URL) } }, instanceId);
  return new WorkersPlaceholderEngine(instanceId, (cfg.engines[instanceId] as Partial<SlngSettings>).model ?? '', probe.capabilities);
}
