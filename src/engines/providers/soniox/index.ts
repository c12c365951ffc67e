/**
 * Provider `soniox` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.10 (real-time STT).
 *
 * PLACEHOLDER registered by the lead so the registries name every provider type; the provider's
 * adapter replaces these factories (settings, secrets from the environment, wire mapping, fake-backed tests).
 */
import type { VoxgateConfig } from '../../../config/config.js';
import type { SttEngine } from '../../stt/types.js';

/** Engine type `soniox` (STT). @throws Error until the adapter is implemented. */
export function createSonioxSttEngine(_cfg: VoxgateConfig, instanceId: string): SttEngine {
  throw new Error(`engines.${instanceId}: engine type soniox (STT) is not implemented yet`);
}
