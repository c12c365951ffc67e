/**
 * Provider `elevenlabs` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.4 (TTS
 * `stream-input` / `multi-stream-input`, tts.ts), §1.5 (Scribe realtime STT, stt.ts). Residency
 * hosts, keys and the account concurrency cap: settings.ts. Docs: docs/providers/elevenlabs.md.
 */
export { createElevenLabsSttEngine, ElevenLabsSttEngine, ElevenLabsSttStream, elevenLabsSttSettingsSchema, scribeError, scribeAudioFrame } from './stt.js';
export { createElevenLabsTtsEngine, ElevenLabsTtsEngine, ElevenLabsTtsStream, elevenLabsTtsSettingsSchema, elevenLabsTtsUrl, elevenLabsWire } from './tts.js';
export { ELEVENLABS_HOSTS, elevenLabsBase, type Residency } from './settings.js';
