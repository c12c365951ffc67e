/**
 * Test-only fixture: the {@link SessionInfo} a dialect encoder receives, with fixed ids and times so
 * encoded frames are reproducible (request id a UUID, created 2026-11-21T10:00:00Z, one channel,
 * PocketSphinx 0.8, the first default STT model, `vad_events` on).
 */
import type { SessionInfo } from '../src/protocol/events.js';
import { DEFAULT_STT_MODELS } from '../src/config/config.js';

/** A fixed session description; `over` replaces fields (e.g. `model`, `transcriptChannels`, `format`). */
export function testSessionInfo(over: Partial<SessionInfo> = {}): SessionInfo {
  return {
    sessionId: 'sess_s',
    requestId: '6f1c1e52-4a47-4d2e-9a34-1f2a3b4c5d6e',
    model: DEFAULT_STT_MODELS[0]!,
    createdAt: new Date('2026-11-21T10:00:00Z'),
    channels: 1,
    engine: { id: 'pocketsphinx', version: '0.8' },
    vadEvents: true,
    ...over,
  };
}
