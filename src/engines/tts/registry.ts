/**
 * TTS engine registry: engine ids (the TTS catalogue's `engine` field) → factories.
 *
 * Adding an engine means adding one entry here (and a folder beside this file); dialects, sessions
 * and routes never change (issue #4 "a new engine addable without touching dialects"). Engines are
 * created once and shared by every catalogue entry naming them.
 */
import { engineType, modelBackends, type VoxgateConfig } from '../../config/config.js';
import { EspeakEngine } from './espeak/index.js';
import { FakeTtsEngine } from './fake/index.js';
import { FliteEngine } from './flite/index.js';
import type { TtsEngine } from './types.js';
import { createDeepgramTtsEngine } from './upstream/deepgram.js';
import { createSlngTtsEngine } from './upstream/slng.js';
import { createCartesiaTtsEngine } from '../providers/cartesia/index.js';
import { createElevenLabsTtsEngine } from '../providers/elevenlabs/index.js';
import { createSarvamTtsEngine } from '../providers/sarvam/index.js';
import { createSmallestTtsEngine } from '../providers/smallest/index.js';

/**
 * A factory receives the resolved configuration and the instance id (settings in
 * `cfg.engines[instanceId]`, validated by the factory) and returns an un-initialised engine.
 * Registry keys are engine *types* (engine contract v2, issue 10 part 1).
 */
export type TtsEngineFactory = (cfg: VoxgateConfig, instanceId: string) => TtsEngine;

/**
 * Built-in engines. `fake` is the scripted test engine (fake/index.ts): never in the default
 * catalogue; tests name it in their config and set its script through the running engine.
 */
export const TTS_ENGINE_FACTORIES: Record<string, TtsEngineFactory> = {
  flite: (cfg) => new FliteEngine({ maxConcurrentJobs: cfg.tts.limits.maxConcurrentJobs, jobTimeoutMs: cfg.tts.limits.jobTimeoutSeconds * 1000 }),
  'espeak-ng': (cfg) => new EspeakEngine({ maxConcurrentJobs: cfg.tts.limits.maxConcurrentJobs, jobTimeoutMs: cfg.tts.limits.jobTimeoutSeconds * 1000 }),
  fake: (_cfg, instanceId) => new FakeTtsEngine({ id: instanceId }),
  slng: createSlngTtsEngine,
  deepgram: createDeepgramTtsEngine,
  /** ElevenLabs stream-input / multi-stream-input (upstreams.md §1.4); providers/elevenlabs. */
  elevenlabs: createElevenLabsTtsEngine,
  /** Cartesia Sonic (§1.6); providers/cartesia. */
  cartesia: createCartesiaTtsEngine,
  /** Sarvam bulbul (§1.11); providers/sarvam. */
  sarvam: createSarvamTtsEngine,
  /** smallest.ai Lightning/Waves (§1.12); providers/smallest. */
  smallest: createSmallestTtsEngine,
};

/**
 * Instantiate and initialise every TTS engine the catalogue references, and check each entry's
 * `defaultVoice`/`voices` against the engine's voices.
 * @throws Error naming the model for an unknown engine id or voice, or the engine's own init error
 *   (e.g. the Debian package is missing).
 */
export async function createTtsEngines(cfg: VoxgateConfig, factories: Record<string, TtsEngineFactory> = TTS_ENGINE_FACTORIES): Promise<Map<string, TtsEngine>> {
  const engines = new Map<string, TtsEngine>();
  for (const m of cfg.tts.models) {
    for (const id of modelBackends(m)) {
      if (engines.has(id)) continue;
      const type = engineType(cfg, id);
      const f = factories[type];
      if (!f) throw new Error(`TTS model ${m.code} references engine "${id}" of unknown type "${type}" (known types: ${Object.keys(factories).join(', ')})`);
      engines.set(id, f(cfg, id));
    }
  }
  try {
    await Promise.all([...engines.values()].map((e) => e.init()));
    for (const m of cfg.tts.models) {
      // Every voice a backend is mapped to must exist on that backend (TTS model `backendVoices`).
      for (const [inst, map] of Object.entries(m.backendVoices ?? {})) {
        const e = modelBackends(m).includes(inst) ? engines.get(inst) : undefined;
        if (!e) throw new Error(`TTS model ${m.code}: backendVoices names "${inst}", which is not one of its backends (${modelBackends(m).join(', ')})`);
        const have = new Set(e.capabilities.voices.map((v) => v.id));
        for (const [from, to] of Object.entries(map)) {
          if (!have.has(to.toLowerCase())) throw new Error(`TTS model ${m.code}: backendVoices.${inst}.${from} = "${to}", but engine ${inst} has no such voice`);
        }
      }
      const ids = new Set(engines.get(m.engine)!.capabilities.voices.map((v) => v.id));
      for (const v of [...(m.voices ?? []), ...(m.defaultVoice ? [m.defaultVoice] : [])]) {
        if (!ids.has(v.toLowerCase())) throw new Error(`TTS model ${m.code}: engine ${m.engine} has no voice "${v}"`);
      }
    }
  } catch (err) {
    await Promise.all([...engines.values()].map((e) => e.shutdown()));
    throw err;
  }
  return engines;
}
