/**
 * Records everything an STT engine stream emits, for engine-level tests (failover, providers).
 * Times as the stream reports them (seconds from stream start).
 */
import type { SttFinal, SttPartial, SttStream } from '../../src/engines/stt/types.js';

/** Everything a stream emitted, in order per kind. */
export interface Seen {
  finals: SttFinal[];
  partials: SttPartial[];
  /** `speech_started` timestamps, seconds. */
  speech: number[];
  errors: Error[];
}

/** Start recording `s`'s events; the returned object fills as they arrive. */
export function watch(s: SttStream): Seen {
  const seen: Seen = { finals: [], partials: [], speech: [], errors: [] };
  s.on('final', (f) => seen.finals.push(f));
  s.on('partial', (p) => seen.partials.push(p));
  s.on('speech_started', (e) => seen.speech.push(e.timestamp));
  s.on('error', (e) => seen.errors.push(e));
  return seen;
}
