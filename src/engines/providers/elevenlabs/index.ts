/**
 * Provider `elevenlabs` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.4 (TTS stream-input / multi-stream-input), §1.5 (Scribe realtime STT).
 *
 * PLACEHOLDER registered by the lead so the registries name every provider type; the provider's
 * adapter replaces these factories (settings, secrets from the environment, wire mapping, fake-backed tests).
 */
import type { VoxgateConfig } from '../../../config/config.js';
import type { SttEngine } from '../../stt/types.js';
import type { TtsEngine } from '../../tts/types.js';

/** Engine type `elevenlabs` (STT). @throws Error until the adapter is implemented. */
export function createElevenLabsSttEngine(_cfg: VoxgateConfig, instanceId: string): SttEngine {
  throw new Error(`engines.${instanceId}: engine type elevenlabs (STT) is not implemented yet`);
}

/** Engine type `elevenlabs` (TTS). @throws Error until the adapter is implemented. */
export function createElevenLabsTtsEngine(_cfg: VoxgateConfig, instanceId: string): TtsEngine {
  throw new Error(`engines.${instanceId}: engine type elevenlabs (TTS) is not implemented yet`);
}
