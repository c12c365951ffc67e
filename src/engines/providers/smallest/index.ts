/**
 * Provider `smallest` as an upstream engine type (issue 11): shared/spec/upstreams.md §1.12 (Pulse
 * STT, Lightning/Waves TTS) over protocols.md §4. STT: stt.ts; TTS: tts.ts; hosts, regions,
 * languages and limits: settings.ts; docs/providers/smallest.md.
 */
export { createSmallestSttEngine, SmallestSttEngine, SmallestSttStream, smallestSttSettingsSchema } from './stt.js';
export { createSmallestTtsEngine, SmallestTtsEngine, smallestTtsSettingsSchema, classifySmallestTtsFrame } from './tts.js';
export { SMALLEST_HOSTS, pulseLanguages } from './settings.js';
