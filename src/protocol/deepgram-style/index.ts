/**
 * The SLNG direct-route STT dialect with Deepgram-native responses (shared/spec/protocols.md §1.4):
 * SLNG client messages (`init`, binary audio, `finalize`, `close`, `keepalive`; the Deepgram names
 * `KeepAlive`, `Finalize`, `CloseStream` are accepted too), Deepgram server shapes: `Metadata` when
 * the session opens (no `ready`) and again at the end with totals, `Results`, `SpeechStarted` (when
 * `vad_events` is set), and `Error` frames with `code`/`message`.
 *
 * Unlike the unified dialect, empty finals are sent (Deepgram sends empty `Results` when an endpoint
 * closes an utterance with no words), and every final carries `words`.
 */
import { createHash } from 'node:crypto';
import type { SessionEvent, SessionInfo, SttDialect } from '../events.js';
import { parseSlngClientFrame } from '../unified/client.js';
import { formatText, formatUtterance } from '../../text/format.js';
import type { DeepgramStyleServerMessage } from './schema.js';
import { interimWords } from '../interim.js';
import type { SttWord } from '../../engines/stt/types.js';
import { slngErrorCode } from '../../util/errors.js';

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** A name-based UUID (RFC 4122 version 5 layout over SHA-1) so a model's `model_uuid` is stable. */
export function nameUuid(name: string): string {
  const h = createHash('sha1').update('voxgate:' + name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}


function metadata(info: SessionInfo, duration: number, sha256: string): DeepgramStyleServerMessage {
  return {
    type: 'Metadata',
    request_id: info.requestId,
    created: info.createdAt.toISOString(),
    duration: round(duration),
    channels: info.channels,
    sha256,
    transaction_key: 'deprecated',
  };
}

function resultsMetadata(info: SessionInfo) {
  return {
    request_id: info.requestId,
    model_info: { name: info.model.code, version: info.engine.version, arch: info.engine.id },
    model_uuid: nameUuid(info.model.code),
  };
}

/**
 * One `Results` alternative for interims and finals alike. `punctuated_word` is required in this
 * dialect: the word itself unless init asked for formatting (§1.4 `smart_format`).
 * @param words times in seconds from stream start; rounded to ms here.
 */
function alternative(info: SessionInfo, text: string, words: readonly SttWord[], confidence: number) {
  const fmt = info.format ?? { punctuate: false, numerals: false, smartFormat: false };
  const f = formatUtterance([...words], fmt);
  const formatting = fmt.punctuate || fmt.numerals || fmt.smartFormat;
  const transcript = !formatting ? text : words.length > 0 ? f.transcript : formatText(text, fmt);
  return {
    transcript,
    confidence: round(confidence),
    words: f.words.map((w) => ({
      word: w.word,
      start: round(w.start),
      end: round(w.end),
      confidence: round(w.confidence),
      punctuated_word: w.punctuated_word,
    })),
  };
}

/**
 * Encode one event as Deepgram-style frames (pure). Interim `Results` carry words and a confidence
 * (src/protocol/interim.ts); `Error` codes are SLNG's (see {@link slngErrorCode}).
 */
export function encodeDeepgramStyle(ev: SessionEvent): DeepgramStyleServerMessage[] {
  switch (ev.kind) {
    case 'ready':
      return [metadata(ev.info, 0, 'incomplete')];
    case 'partial': {
      if (!ev.result.transcript) return [];
      const interim = interimWords(ev.result);
      return [
        {
          type: 'Results',
          channel_index: [0, 1],
          duration: round(ev.result.duration),
          start: round(ev.result.start),
          is_final: false,
          speech_final: false,
          from_finalize: false,
          channel: { alternatives: [alternative(ev.info, ev.result.transcript, interim.words, interim.confidence)] },
          metadata: resultsMetadata(ev.info),
        },
      ];
    }
    case 'final': {
      const r = ev.result;
      return [
        {
          type: 'Results',
          channel_index: [0, 1],
          duration: round(r.duration),
          start: round(r.start),
          is_final: true,
          speech_final: r.speechFinal,
          from_finalize: r.fromFinalize,
          channel: { alternatives: [alternative(ev.info, r.transcript, r.words ?? [], r.confidence)] },
          metadata: resultsMetadata(ev.info),
        },
      ];
    }
    case 'speech_started':
      return ev.info.vadEvents ? [{ type: 'SpeechStarted', channel: [0, 1], timestamp: round(ev.timestamp) }] : [];
    case 'utterance_end':
      return [{ type: 'UtteranceEnd', channel: [ev.channel ?? 0, ev.info.transcriptChannels ?? 1], last_word_end: round(ev.lastWordEnd) }];
    case 'error':
      return [{ type: 'Error', code: slngErrorCode(ev.code), message: ev.message }];
    case 'ended':
      return [metadata(ev.info, ev.audioSeconds, ev.sha256)];
  }
}

/** The Deepgram-style dialect object. */
export const deepgramStyleDialect: SttDialect = {
  name: 'deepgram-style',
  alwaysWords: true,
  parseText: (text) =>
    parseSlngClientFrame(text, {
      KeepAlive: { kind: 'keepalive' },
      Finalize: { kind: 'finalize' },
      CloseStream: { kind: 'close' },
    }),
  encode: (ev) => encodeDeepgramStyle(ev).map((m) => JSON.stringify(m)),
};
