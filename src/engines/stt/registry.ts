/**
 * STT engine registry: engine ids (the catalogue's `engine` field) → factories.
 *
 * Adding an engine means adding one entry here; the server, sessions and dialects never change
 * (issue #2: "A second engine must be addable without touching the server or the dialects").
 * Engines are created lazily and shared by every catalogue entry that names them.
 */
import type { VoxgateConfig } from '../../config/config.js';
import { engineSettings } from '../../config/config.js';
import { FakeSttEngine, type FakeSttScript } from './fake/index.js';
import { PocketSphinxEngine } from './pocketsphinx/index.js';
import type { SttCapabilities, SttEngine } from './types.js';

/** A factory receives the resolved configuration and returns an un-initialised engine. */
export type SttEngineFactory = (cfg: VoxgateConfig) => SttEngine;

/**
 * Built-in engines. `fake` is the scripted test engine (fake/index.ts): never in the default
 * catalogue; a test config names it, with its script and capability overrides in the first entry's
 * `options.script` / `options.capabilities`.
 */
export const STT_ENGINE_FACTORIES: Record<string, SttEngineFactory> = {
  pocketsphinx: (cfg) => {
    const s = engineSettings(cfg, 'pocketsphinx');
    return new PocketSphinxEngine({ minIdleDecoders: s.minIdleDecoders, maxDecoders: s.maxDecoders });
  },
  fake: (cfg) => {
    const o = cfg.stt.models.find((m) => m.engine === 'fake')?.options ?? {};
    return new FakeSttEngine({ script: o.script as FakeSttScript | undefined, capabilities: o.capabilities as Partial<SttCapabilities> | undefined });
  },
};

/**
 * Instantiate and initialise every engine the catalogue references.
 * @throws Error naming the model when the catalogue references an unknown engine id.
 */
export async function createSttEngines(
  cfg: VoxgateConfig,
  factories: Record<string, SttEngineFactory> = STT_ENGINE_FACTORIES,
): Promise<Map<string, SttEngine>> {
  const engines = new Map<string, SttEngine>();
  for (const m of cfg.stt.models) {
    if (engines.has(m.engine)) continue;
    const f = factories[m.engine];
    if (!f) throw new Error(`model ${m.code} references unknown engine "${m.engine}" (known: ${Object.keys(factories).join(', ')})`);
    engines.set(m.engine, f(cfg));
  }
  await Promise.all([...engines.values()].map((e) => e.init()));
  return engines;
}
