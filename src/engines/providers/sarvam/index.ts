/**
 * Provider `sarvam` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.11 (streaming STT saaras, TTS bulbul).
 *
 * PLACEHOLDER registered by the lead so the registries name every provider type; the provider's
 * adapter replaces these factories (settings, secrets from the environment, wire mapping, fake-backed tests).
 */
import type { VoxgateConfig } from '../../../config/config.js';
import type { SttEngine } from '../../stt/types.js';
import type { TtsEngine } from '../../tts/types.js';

/** Engine type `sarvam` (STT). @throws Error until the adapter is implemented. */
export function createSarvamSttEngine(_cfg: VoxgateConfig, instanceId: string): SttEngine {
  throw new Error(`engines.${instanceId}: engine type sarvam (STT) is not implemented yet`);
}

/** Engine type `sarvam` (TTS). @throws Error until the adapter is implemented. */
export function createSarvamTtsEngine(_cfg: VoxgateConfig, instanceId: string): TtsEngine {
  throw new Error(`engines.${instanceId}: engine type sarvam (TTS) is not implemented yet`);
}
