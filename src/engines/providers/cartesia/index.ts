/**
 * Provider `cartesia` as upstream engine types (issue 11): shared/spec/upstreams.md §1.6 (Sonic TTS
 * WebSocket, ./tts.ts) and §1.7 (Ink STT WebSocket, ./stt.ts); hosts, auth, plans: ./settings.ts.
 * Both factories are registered under the type name `cartesia` in src/engines/{stt,tts}/registry.ts.
 */
export { createCartesiaSttEngine } from './stt.js';
export { createCartesiaTtsEngine } from './tts.js';
