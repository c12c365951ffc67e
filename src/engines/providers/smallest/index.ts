/**
 * Provider `smallest` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.12 (Pulse STT, Lightning/Waves TTS) over protocols.md §4.
 *
 * PLACEHOLDER registered by the lead so the registries name every provider type; the provider's
 * adapter replaces these factories (settings, secrets from the environment, wire mapping, fake-backed tests).
 */
import type { VoxgateConfig } from '../../../config/config.js';
import type { SttEngine } from '../../stt/types.js';
import type { TtsEngine } from '../../tts/types.js';

/** Engine type `smallest` (STT). @throws Error until the adapter is implemented. */
export function createSmallestSttEngine(_cfg: VoxgateConfig, instanceId: string): SttEngine {
  throw new Error(`engines.${instanceId}: engine type smallest (STT) is not implemented yet`);
}

/** Engine type `smallest` (TTS). @throws Error until the adapter is implemented. */
export function createSmallestTtsEngine(_cfg: VoxgateConfig, instanceId: string): TtsEngine {
  throw new Error(`engines.${instanceId}: engine type smallest (TTS) is not implemented yet`);
}
