/**
 * Provider `sarvam` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.11 — streaming
 * STT (saaras, ./stt.ts) and streaming TTS (bulbul, ./tts.ts). One type name in both registries: an
 * STT instance and a TTS instance are separate `engines.<id>` entries (their settings differ).
 */
export { createSarvamSttEngine, SARVAM_LANGUAGES, SARVAM_STT_URL, sarvamAudioFrame, sarvamError, sarvamLanguageCode, sarvamSttSettingsSchema, SarvamSttEngine, SarvamSttStream } from './stt.js';
export type { SarvamSttSettings } from './stt.js';
export { classifySarvamFrame, createSarvamTtsEngine, SARVAM_MAX_TEXT, SARVAM_TTS_URL, sarvamPcm, sarvamTtsSettingsSchema, SarvamTtsEngine, splitText } from './tts.js';
export type { SarvamTtsSettings } from './tts.js';
