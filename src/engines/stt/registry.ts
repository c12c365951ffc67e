/**
 * STT engine registry: engine *types* → factories (engine contract v2, issue 10 part 1).
 *
 * The catalogue names engine *instances* (`engine` / `backends` of a model); an instance is an entry
 * of the config's `engines` section (`{type, region, …typed settings}`) or, without an entry, the
 * instance of the type of that name with default settings. Adding an engine type means adding one
 * entry here; the server, sessions and dialects never change (issue #2). Each instance is created
 * once and shared by every catalogue entry that names it.
 */
import type { VoxgateConfig } from '../../config/config.js';
import { engineSettings, engineType, modelBackends } from '../../config/config.js';
import { FakeSttEngine, type FakeSttScript } from './fake/index.js';
import { PocketSphinxEngine } from './pocketsphinx/index.js';
import type { SttCapabilities, SttEngine } from './types.js';
import { createDeepgramSttEngine, createSlngSttEngine } from './upstream/index.js';
import { createCartesiaSttEngine } from '../providers/cartesia/index.js';
import { createElevenLabsSttEngine } from '../providers/elevenlabs/index.js';
import { createSarvamSttEngine } from '../providers/sarvam/index.js';
import { createSmallestSttEngine } from '../providers/smallest/index.js';
import { createWorkersSttEngine } from './upstream/workers.js';
import { createSonioxSttEngine } from '../providers/soniox/index.js';

/**
 * A factory receives the resolved configuration and the instance id (its settings are
 * `cfg.engines[instanceId]`, validated by the factory with its type's schema) and returns an
 * un-initialised engine.
 * @throws Error naming the instance when its settings are invalid.
 */
export type SttEngineFactory = (cfg: VoxgateConfig, instanceId: string) => SttEngine;

/**
 * Built-in engines. `fake` is the scripted test engine (fake/index.ts): never in the default
 * catalogue; a test config names it, with its script and capability overrides in the instance's
 * `engines.<id>.script` / `.capabilities`, else the first entry's `options.script` / `options.capabilities`.
 */
export const STT_ENGINE_FACTORIES: Record<string, SttEngineFactory> = {
  pocketsphinx: (cfg, instanceId) => {
    const s = engineSettings(cfg, instanceId);
    return new PocketSphinxEngine({ minIdleDecoders: s.minIdleDecoders, maxDecoders: s.maxDecoders });
  },
  fake: (cfg, instanceId) => {
    // Each instance reads `script`/`capabilities` from its own `engines.<instanceId>` entry (several
    // fake instances in different regions, issue 10 routing tests); else from the first catalogue
    // entry naming it (`options.script`, `options.capabilities`).
    const inst = (cfg.engines[instanceId] ?? {}) as { script?: unknown; capabilities?: unknown };
    const o = cfg.stt.models.find((m) => m.engine === instanceId || m.engine === 'fake')?.options ?? {};
    return new FakeSttEngine({
      id: instanceId,
      script: (inst.script ?? o.script) as FakeSttScript | undefined,
      capabilities: (inst.capabilities ?? o.capabilities) as Partial<SttCapabilities> | undefined,
    });
  },
  /** Relay to a SLNG unified STT server (another voxgate, SLNG's API); upstream/slng.ts. */
  slng: createSlngSttEngine,
  /** Relay to Deepgram live `/v1/listen`; upstream/deepgram.ts. */
  deepgram: createDeepgramSttEngine,
  /** ElevenLabs Scribe realtime (upstreams.md §1.5); providers/elevenlabs. */
  elevenlabs: createElevenLabsSttEngine,
  /** Cartesia Ink (§1.7); providers/cartesia. */
  cartesia: createCartesiaSttEngine,
  /** Soniox real-time (§1.10); providers/soniox. */
  soniox: createSonioxSttEngine,
  /** Sarvam streaming STT (§1.11); providers/sarvam. */
  sarvam: createSarvamSttEngine,
  /** smallest.ai Pulse (§1.12); providers/smallest. */
  smallest: createSmallestSttEngine,
  /** Registered voxgate workers of a region (issue 12); upstream/workers.ts, expanded by the router. */
  workers: createWorkersSttEngine,
};

/**
 * Instantiate and initialise every engine instance the catalogue references (each model's
 * `backends`, else its `engine`).
 * @returns engines keyed by instance id.
 * @throws Error naming the model when an instance's type is unknown, or the instance's own
 *   settings/init error.
 */
export async function createSttEngines(
  cfg: VoxgateConfig,
  factories: Record<string, SttEngineFactory> = STT_ENGINE_FACTORIES,
): Promise<Map<string, SttEngine>> {
  const engines = new Map<string, SttEngine>();
  for (const m of cfg.stt.models) {
    for (const id of modelBackends(m)) {
      if (engines.has(id)) continue;
      const type = engineType(cfg, id);
      const f = factories[type];
      if (!f) throw new Error(`model ${m.code} references engine "${id}" of unknown type "${type}" (known types: ${Object.keys(factories).join(', ')})`);
      engines.set(id, f(cfg, id));
    }
  }
  await Promise.all([...engines.values()].map((e) => e.init()));
  return engines;
}
