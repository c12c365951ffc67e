/**
 * Provider `cartesia` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.6 (Sonic TTS WebSocket), §1.7 (Ink STT WebSocket).
 *
 * PLACEHOLDER registered by the lead so the registries name every provider type; the provider's
 * adapter replaces these factories (settings, secrets from the environment, wire mapping, fake-backed tests).
 */
import type { VoxgateConfig } from '../../../config/config.js';
import type { SttEngine } from '../../stt/types.js';
import type { TtsEngine } from '../../tts/types.js';

/** Engine type `cartesia` (STT). @throws Error until the adapter is implemented. */
export function createCartesiaSttEngine(_cfg: VoxgateConfig, instanceId: string): SttEngine {
  throw new Error(`engines.${instanceId}: engine type cartesia (STT) is not implemented yet`);
}

/** Engine type `cartesia` (TTS). @throws Error until the adapter is implemented. */
export function createCartesiaTtsEngine(_cfg: VoxgateConfig, instanceId: string): TtsEngine {
  throw new Error(`engines.${instanceId}: engine type cartesia (TTS) is not implemented yet`);
}
