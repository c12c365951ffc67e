/**
 * The SLNG direct-route STT dialect with Deepgram-native responses (shared/spec/protocols.md §1.4):
 * SLNG client messages (`init`, binary audio, `finalize`, `close`, `keepalive`; the Deepgram names
 * `KeepAlive`, `Finalize`, `CloseStream` are accepted too), Deepgram server shapes: `Metadata` when
 * the session opens (no `ready`) and again at the end with totals, `Results`, `SpeechStarted` (when
 * `vad_events` is set), and `Error` frames with `code`/`message`.
 *
 * `Results`, `SpeechStarted` and `UtteranceEnd` are built by the shared Deepgram shape module
 * (src/protocol/deepgram/shape.ts), exactly as on `/v1/listen`; only the SLNG `Metadata` and `Error`
 * frames are this dialect's own. So words carry `punctuated_word` only when `init.config` asks for
 * `punctuate`, `smart_format` or `numerals` (§1.4 server frames are the §2.4 shapes). Unlike the unified dialect, empty finals are sent (Deepgram sends
 * empty `Results` when an endpoint closes an utterance with no words), and every final carries `words`.
 */
import type { SessionEvent, SessionInfo, SttDialect } from '../events.js';
import { parseSlngClientFrame } from '../unified/client.js';
import type { DeepgramStyleServerMessage } from './schema.js';
import { deepgramLiveFrames, NO_FORMAT, roundDg } from '../deepgram/shape.js';
import { slngErrorCode } from '../../util/errors.js';

/** The SLNG `Metadata` frame (§1.4), in its documented key order. `duration` in seconds. */
function metadata(info: SessionInfo, duration: number, sha256: string): DeepgramStyleServerMessage {
  return {
    type: 'Metadata',
    request_id: info.requestId,
    created: info.createdAt.toISOString(),
    duration: roundDg(duration),
    channels: info.channels,
    sha256,
    transaction_key: 'deprecated',
  };
}

/**
 * Encode one event as Deepgram-style frames (pure). Interim `Results` carry words and a confidence
 * (src/protocol/interim.ts); formatting comes from `init.config` (`info.format`); `Error` codes are
 * SLNG's (see {@link slngErrorCode}).
 */
export function encodeDeepgramStyle(ev: SessionEvent): DeepgramStyleServerMessage[] {
  const live = 'info' in ev ? deepgramLiveFrames(ev, ev.info.format ?? NO_FORMAT) : undefined;
  if (live) return live;
  switch (ev.kind) {
    case 'ready':
      return [metadata(ev.info, 0, 'incomplete')];
    case 'error':
      return [{ type: 'Error', code: slngErrorCode(ev.code), message: ev.message }];
    case 'ended':
      return [metadata(ev.info, ev.audioSeconds, ev.sha256)];
    default:
      return [];
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
