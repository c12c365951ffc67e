/**
 * The SLNG unified STT dialect (shared/spec/protocols.md §1.3): used by `/v1/stt/...` routes whose
 * catalogue entry says `dialect: "unified"` and always by `/v1/bridges/unmute/stt/{model_variant}`.
 *
 * Server frames: `ready`, `partial_transcript` (only when partials are enabled — the session does not
 * produce them otherwise), `final_transcript`, `error`. Empty finals are not sent unless they answer a
 * `finalize` (so a client waiting for `from_finalize: true` never hangs).
 *
 * Diarization (issue 13; a voxgate extension of §1.3, whose schema is open): a diarized
 * `final_transcript` carries the segment's `speaker` (the label of most of its speech) and, when it
 * has `words`, `speaker` and `speaker_confidence` on each word — Deepgram's names (§2.4). Error codes are SLNG's
 * ({@link slngErrorCode}: e.g. undecodable audio is `invalid_request`, an engine failure `provider_error`).
 */
import type { SessionEvent, SttDialect } from '../events.js';
import type { UnifiedServerMessage } from './schema.js';
import { parseSlngClientFrame } from './client.js';
import { formatText } from '../../text/format.js';
import { slngErrorCode } from '../../util/errors.js';

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Encode one event as unified frames (pure). */
export function encodeUnified(ev: SessionEvent): UnifiedServerMessage[] {
  switch (ev.kind) {
    case 'ready':
      return [{ type: 'ready', session_id: ev.info.sessionId }];
    case 'partial': {
      if (!ev.result.transcript) return [];
      const m: UnifiedServerMessage = { type: 'partial_transcript', transcript: ev.result.transcript };
      if (ev.result.confidence !== undefined) m.confidence = round(ev.result.confidence);
      return [m];
    }
    case 'final': {
      const r = ev.result;
      if (!r.transcript && !r.fromFinalize) return [];
      const fmt = ev.info.format;
      const m: UnifiedServerMessage = {
        type: 'final_transcript',
        transcript: fmt && (fmt.punctuate || fmt.numerals || fmt.smartFormat) ? formatText(r.transcript, fmt) : r.transcript,
        confidence: round(r.confidence),
        language: r.language,
        start: round(r.start),
        duration: round(r.duration),
        speech_final: r.speechFinal,
        from_finalize: r.fromFinalize,
      };
      if (r.words) {
        m.words = r.words.map((w) => ({
          word: w.word,
          start: round(w.start),
          end: round(w.end),
          confidence: round(w.confidence),
          ...(w.speaker !== undefined ? { speaker: w.speaker } : {}),
          ...(w.speaker !== undefined && w.speakerConfidence !== undefined ? { speaker_confidence: round(w.speakerConfidence) } : {}),
        }));
      }
      if (r.speaker !== undefined) m.speaker = r.speaker;
      return [m];
    }
    case 'error':
      return [{ type: 'error', code: slngErrorCode(ev.code), message: ev.message }];
    case 'speech_started':
    case 'utterance_end':
    case 'ended':
      return [];
  }
}

/** The unified dialect object. */
export const unifiedDialect: SttDialect = {
  name: 'unified',
  alwaysWords: false,
  parseText: (text) => parseSlngClientFrame(text),
  encode: (ev) => encodeUnified(ev).map((m) => JSON.stringify(m)),
};
