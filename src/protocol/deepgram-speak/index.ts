/**
 * Deepgram's streaming TTS dialect, `/v1/speak` (shared/spec/protocols.md §3, §5, §6.7–6.9).
 *
 * The session is configured from the URL (`model` = voice, `encoding`, `sample_rate`, `speed`) and
 * starts at once: `Metadata` right after the handshake, no `init`.
 * Client: `Speak` {text} (≤ 2000 characters), `Flush`, `Clear`, `Close`.
 * Server: `Metadata`, binary audio frames (raw, no container), `Flushed` {sequence_id},
 * `Cleared` {sequence_id}, `Warning` {description, code}.
 *
 * Deepgram signals errors only through close codes: binary input → 1003 `MESSAGE-0000`; a frame
 * that is not a valid command → 1008 `DATA-0000`; a frame over the size limit → 1009 `BIG-0000`;
 * `Speak` text over 2000 characters → 1009 `BIG-0001`; engine failure → 1011 `NET-0000`;
 * idle → 1011 `NET-0001`; unread audio piling up (backpressure) → 1011 `NET-0002`; session time
 * limit → 1011 `NET-0003`.
 * More than 20 `Flush` per 60 s → `Warning` and, as on Deepgram ("we cannot process any more flush
 * messages until the 60-second time window has passed"), the flush is not performed: no `Flushed`
 * answers it and buffered text stays buffered. Errors that keep the session (a segment the engine
 * could not speak, rejected text) are `Warning`s too.
 */
import { z } from 'zod';
import { CloseCode, ERRORS, type ErrorCode } from '../../util/errors.js';
import type { CloseSpec, TtsCommand, TtsDialect, TtsEvent, WireFrame } from '../tts_events.js';
import { FLUSH_LIMIT, FLUSH_WINDOW_MS, SPEAK_MAX_CHARS, speakClientMessageSchema, type SpeakServerMessage } from './schema.js';

/** Deepgram's close for a frame that is not a valid command. */
const DATA_0000: CloseSpec = { code: CloseCode.POLICY, reason: 'DATA-0000' };

/** A stable UUID-shaped id derived from a string (Deepgram `model_uuid` for a voice). */
export function nameUuid(name: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const hex: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const ch of `${round}:${name}`) {
      h1 = Math.imul(h1 ^ ch.charCodeAt(0), 0x01000193) >>> 0;
      h2 = Math.imul(h2 + ch.charCodeAt(0), 0x5bd1e995) >>> 0;
    }
    hex.push(((h1 ^ h2) >>> 0).toString(16).padStart(8, '0'));
  }
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-5${s.slice(13, 16)}-8${s.slice(17, 20)}-${s.slice(20, 32)}`;
}

/**
 * Parse one `/v1/speak` client text frame (pure apart from the Flush-rate window `flushTimes`: the
 * times, ms, of the flushes processed in the last 60 s).
 */
export function parseSpeakFrame(text: string, flushTimes: number[], now: number): TtsCommand {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: 'invalid_request', message: 'malformed JSON text frame', close: DATA_0000 };
  }
  const parsed = speakClientMessageSchema.safeParse(json);
  if (!parsed.success) {
    const type = (json as { type?: unknown } | null)?.type;
    const what = typeof type === 'string' ? `invalid "${type.slice(0, 40)}" message: ${z.prettifyError(parsed.error)}` : 'message is not a Speak, Flush, Clear or Close command';
    return { kind: 'invalid', code: 'invalid_request', message: what, close: DATA_0000 };
  }
  const m = parsed.data;
  switch (m.type) {
    case 'Speak':
      if ([...m.text].length > SPEAK_MAX_CHARS) {
        return { kind: 'invalid', code: 'payload_too_large', message: `Speak text has more than ${SPEAK_MAX_CHARS} characters`, close: { code: CloseCode.TOO_BIG, reason: 'BIG-0001' } };
      }
      return { kind: 'text', text: m.text, flush: false };
    case 'Flush': {
      // Sliding window over the *processed* flushes: a refused one does not extend the wait.
      while (flushTimes.length && now - flushTimes[0]! >= FLUSH_WINDOW_MS) flushTimes.shift();
      if (flushTimes.length >= FLUSH_LIMIT) {
        const wait = Math.ceil((FLUSH_WINDOW_MS - (now - flushTimes[0]!)) / 1000);
        return {
          kind: 'warning',
          code: 'FLUSH_LIMIT_EXCEEDED',
          description: `Flush not processed: at most ${FLUSH_LIMIT} Flush messages per ${FLUSH_WINDOW_MS / 1000} seconds; no more can be processed for ${wait} s.`,
        };
      }
      flushTimes.push(now);
      return { kind: 'flush' };
    }
    case 'Clear':
      return { kind: 'clear' };
    case 'Close':
      return { kind: 'close' };
    case 'KeepAlive':
      return { kind: 'keepalive' };
  }
}

/**
 * Encode one event as `/v1/speak` frames (pure). Errors become `Warning` {description, code}; when
 * they end the session the close code (see {@link speakCloseFor}) follows.
 */
export function encodeSpeak(ev: TtsEvent): (SpeakServerMessage | Buffer)[] {
  switch (ev.kind) {
    case 'ready':
      return [
        {
          type: 'Metadata',
          request_id: ev.info.requestId,
          model_name: ev.info.voiceName,
          model_version: `${ev.info.engine.version}.${ev.info.voice.id}`,
          model_uuid: nameUuid(`${ev.info.engine.id}/${ev.info.voice.id}`),
        },
      ];
    case 'audio':
      return [ev.data];
    case 'flushed':
      return [{ type: 'Flushed', sequence_id: ev.sequenceId }];
    case 'cleared':
      return [{ type: 'Cleared', sequence_id: ev.sequenceId }];
    case 'warning':
      return [{ type: 'Warning', description: ev.description, code: ev.code }];
    case 'error':
      // Deepgram has no error frame; a Warning says what happened (before the close, when fatal).
      return [{ type: 'Warning', description: ev.message, code: ev.code }];
    case 'segment_start':
    case 'segment_end':
    case 'audio_end':
      return [];
  }
}

/** Close code and Deepgram reason for a session-ending error (the catalogue's `deepgramSpeakClose`, util/errors.ts; §3). */
export function speakCloseFor(code: ErrorCode): CloseSpec {
  const c = ERRORS[code].deepgramSpeakClose;
  return { code: c.code, reason: c.tag };
}

/** Create a `/v1/speak` dialect instance for one session. `now` is injectable for tests. */
export function createDeepgramSpeakDialect(now: () => number = Date.now): TtsDialect {
  const flushTimes: number[] = [];
  return {
    name: 'deepgram-speak',
    implicitInit: true,
    parseText: (text) => parseSpeakFrame(text, flushTimes, now()),
    binaryFrame: () => ({ kind: 'invalid', code: 'invalid_request', message: 'binary frames are not accepted on /v1/speak', close: { code: 1003, reason: 'MESSAGE-0000' } }),
    oversizedFrame: (bytes, limit) => ({ kind: 'invalid', code: 'payload_too_large', message: `frame of ${bytes} bytes exceeds the ${limit}-byte limit`, close: { code: CloseCode.TOO_BIG, reason: 'BIG-0000' } }),
    rejectedText: (message) => ({ kind: 'invalid', code: 'invalid_request', message, close: DATA_0000 }),
    encode: (ev) => encodeSpeak(ev).map((f): WireFrame => (Buffer.isBuffer(f) ? f : JSON.stringify(f))),
    closeFor: speakCloseFor,
  };
}
