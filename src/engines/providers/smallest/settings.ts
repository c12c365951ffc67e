/**
 * smallest.ai hosts, regions and languages (shared/spec/upstreams.md §1.12; source: repo
 * `smallest-inc/smallest-ai-documentation` `fern/apis/waves/asyncapi/pulse-stt-ws.yaml`,
 * `…/stt-live-ws.yaml`, `…/tts-ws.yaml`, `fern/products/waves/pages/api-references/concurrency-and-limits.mdx`).
 *
 * Region → host table (an instance's `residency`; `url` overrides the host, e.g. for the fakes):
 *
 * | residency | host                          | Pulse STT languages it serves                                        |
 * |-----------|-------------------------------|-----------------------------------------------------------------------|
 * | `in`      | `wss://api.smallest.ai`       | every streaming language except `zh`, `yue`, `ja`, `ko` (the India host "closes the connection without a transcription frame" for them) |
 * | `us`      | `wss://api.us.smallest.ai`    | every streaming language except `ta`, `te`, `kn`, `ml` (the US host rejects them with `LANGUAGE_NOT_ENABLED_IN_REGION`) |
 *
 * `residency` defaults from the instance's voxgate region: world part `na` → `us`, anything else →
 * `in` (smallest's default host is the India region). The language split is why the routing must
 * look at the session's language: each instance declares the languages its host serves as
 * `capabilities.languages`, and the failover engine (src/engines/stt/failover.ts) only dials
 * instances that serve the session's language.
 *
 * Concurrency (concurrency-and-limits.mdx): **1 active TTS request per account** across every TTS
 * endpoint (excess → 429 / an error frame); ≤ 5 TTS sockets. STT: close 1008 when the organisation has
 * too many open sessions (no number published).
 */
import { engineRegion, worldPartOf, type VoxgateConfig } from '../../../config/config.js';

/** Hosts per residency (WebSocket scheme). */
export const SMALLEST_HOSTS = { in: 'wss://api.smallest.ai', us: 'wss://api.us.smallest.ai' } as const;
/** A smallest.ai region. */
export type SmallestResidency = keyof typeof SMALLEST_HOSTS;

/** Pulse streaming single-language codes (pulse-stt-ws.yaml `language` enum, minus the aggregators). */
export const PULSE_STREAMING_LANGUAGES = ['en', 'hi', 'de', 'es', 'ru', 'it', 'fr', 'nl', 'pt', 'zh', 'yue', 'ja', 'ko', 'gu', 'mr', 'or', 'bn', 'ta', 'te', 'kn', 'ml'] as const;
/** Served by the US host only. */
export const US_ONLY_LANGUAGES: readonly string[] = ['zh', 'yue', 'ja', 'ko'];
/** Served by the India host only. */
export const INDIA_ONLY_LANGUAGES: readonly string[] = ['ta', 'te', 'kn', 'ml'];

/** The Pulse languages a residency's host serves (the table in the module docs). */
export function pulseLanguages(residency: SmallestResidency): string[] {
  const excluded = residency === 'us' ? INDIA_ONLY_LANGUAGES : US_ONLY_LANGUAGES;
  return PULSE_STREAMING_LANGUAGES.filter((l) => !excluded.includes(l));
}

/** The residency of instance `instanceId`: its own `residency`, else from its voxgate region's world part (`na` → `us`, else `in`). */
export function defaultResidency(cfg: VoxgateConfig, instanceId: string): SmallestResidency {
  const region = engineRegion(cfg, instanceId);
  return worldPartOf(cfg, region) === 'na' ? 'us' : 'in';
}

/** The account-limiter identity for a key variable and kind (STT and TTS limits are separate: the 1-request cap is TTS only). */
export function smallestAccount(apiKeyEnv: string | undefined, kind: 'stt' | 'tts'): string {
  return `${apiKeyEnv ?? '(no key)'} ${kind}`;
}
