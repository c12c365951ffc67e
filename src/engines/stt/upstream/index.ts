/**
 * Upstream STT engine types (issue 10 part 2): `slng` (SLNG unified protocol, protocols.md §1.3) and
 * `deepgram` (Deepgram live `/v1/listen`, protocols.md §2). Registered in ../registry.ts.
 */
export { createSlngSttEngine, SlngSttEngine, slngSettingsSchema, type SlngSettings } from './slng.js';
export { createDeepgramSttEngine, DeepgramSttEngine, deepgramSettingsSchema, type DeepgramSettings } from './deepgram.js';
export { UpstreamSttEngine, UpstreamSttStream, connectUpstream, handshakeError, redact, type UpstreamSettings } from './common.js';
