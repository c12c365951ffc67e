/**
 * Provider `soniox` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.10 (real-time STT).
 * The adapter is in ./stt.ts (settings, residency hosts, token → partial/final mapping, errors).
 */
export { assembleWords, createSonioxSttEngine, isControlToken, SONIOX_HOSTS, sonioxError, sonioxResidency, sonioxSettingsSchema, SonioxSttEngine, SonioxSttStream } from './stt.js';
export type { SonioxResidency, SonioxSettings, SonioxToken } from './stt.js';
