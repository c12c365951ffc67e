/**
 * The SLNG unified TTS dialect (shared/spec/protocols.md §1.5): `/v1/tts/{provider}/{model}:{variant}`
 * routes whose catalogue entry says `dialect: "unified"`, and always `/v1/bridges/unmute/tts/{model_variant}`.
 *
 * Client: `init` {model, voice, config{sample_rate, encoding, language, speed}} → `ready`;
 * `text` {text, flush}; `flush`; `clear`; `cancel`; `close`; `keepalive`.
 * Server: `ready`, audio as binary frames or `audio_chunk` {data: base64, sequence} — the catalogue
 * entry's `audio` decides —, `segment_start`/`segment_end` {segment_id}, `flushed`, `cleared`,
 * `audio_end` {duration (s)}, `error` {code, message} with SLNG codes only (see `slngErrorCode`: an
 * engine failure is `provider_error`, an unknown model `invalid_request`).
 *
 * Errors that keep the session: malformed JSON, unknown `type`, a `text` over the size limit,
 * binary frames (clients never send audio on TTS). Ending errors close with the catalogue's close
 * code (1008 for policy/config, 1011 for engine failures).
 */
import { z } from 'zod';
import type { TtsAudioFraming } from '../../config/tts_config.js';
import { CloseCode, ERRORS, slngErrorCode, type ErrorCode } from '../../util/errors.js';
import type { CloseSpec, TtsCommand, TtsDialect, TtsEvent, TtsInitRequest, WireFrame } from '../tts_events.js';
import { ttsClientMessageSchema, ttsInitConfigSchema, type TtsUnifiedServerMessage } from './schema.js';

/** Options of a unified TTS dialect instance. */
export interface UnifiedTtsDialectOptions {
  /** Binary frames or base64 `audio_chunk` (catalogue `audio`). */
  audio: TtsAudioFraming;
  /** Largest `text.text`, characters; longer messages get `payload_too_large` and are rejected. */
  maxTextChars: number;
}

const KNOWN = ['init', 'text', 'flush', 'clear', 'cancel', 'close', 'keepalive'];

/** Parse one unified TTS client frame (pure; never throws). */
export function parseUnifiedTtsFrame(text: string, maxTextChars: number): TtsCommand {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: 'invalid_request', message: 'malformed JSON text frame; the frame was rejected' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { kind: 'invalid', code: 'invalid_request', message: 'text frames must be JSON objects with a "type" field' };
  }
  const type = (json as { type?: unknown }).type;
  if (typeof type !== 'string') return { kind: 'invalid', code: 'invalid_request', message: 'missing "type" field' };
  const parsed = ttsClientMessageSchema.safeParse(json);
  if (!parsed.success) {
    if (!KNOWN.includes(type)) {
      return { kind: 'invalid', code: 'invalid_request', message: `unknown message type "${type.slice(0, 64)}"; expected one of ${KNOWN.join(', ')}` };
    }
    return { kind: 'invalid', code: type === 'init' ? 'config_error' : 'invalid_request', message: `invalid "${type}" message: ${z.prettifyError(parsed.error)}` };
  }
  const m = parsed.data;
  switch (m.type) {
    case 'init': {
      let c: z.infer<typeof ttsInitConfigSchema> = {};
      if (m.config !== undefined && m.config !== null) {
        const cfg = ttsInitConfigSchema.safeParse(m.config);
        if (!cfg.success) return { kind: 'invalid', code: 'config_error', message: `invalid init config: ${z.prettifyError(cfg.error)}` };
        c = cfg.data;
      }
      const init: TtsInitRequest = {
        model: m.model,
        voice: m.voice,
        language: c.language ?? m.language,
        encoding: c.encoding,
        sampleRate: c.sample_rate,
        speed: c.speed,
        ...(c.pacing !== undefined ? { pacing: c.pacing } : {}),
      };
      return { kind: 'init', init };
    }
    case 'text':
      if (m.text.length > maxTextChars) {
        return { kind: 'invalid', code: 'payload_too_large', message: `"text" of ${m.text.length} characters exceeds the ${maxTextChars}-character limit; the message was rejected (split it)` };
      }
      return { kind: 'text', text: m.text, flush: m.flush ?? false };
    case 'flush':
    case 'clear':
    case 'cancel':
    case 'close':
    case 'keepalive':
      return { kind: m.type };
  }
}

/** Encode one event as unified frames (pure). Binary audio stays a Buffer. */
export function encodeUnifiedTts(ev: TtsEvent, audio: TtsAudioFraming): (TtsUnifiedServerMessage | Buffer)[] {
  switch (ev.kind) {
    case 'ready':
      return [{ type: 'ready', session_id: ev.info.sessionId }];
    case 'audio':
      return audio === 'binary' ? [ev.data] : [{ type: 'audio_chunk', data: ev.data.toString('base64'), sequence: ev.sequence }];
    case 'segment_start':
      return [{ type: 'segment_start', segment_id: ev.segmentId }];
    case 'segment_end':
      return [{ type: 'segment_end', segment_id: ev.segmentId }];
    case 'flushed':
      return [{ type: 'flushed' }];
    case 'cleared':
      return [{ type: 'cleared' }];
    case 'audio_end':
      return [{ type: 'audio_end', duration: Math.round(ev.duration * 1000) / 1000 }];
    case 'error':
      return [{ type: 'error', code: slngErrorCode(ev.code), message: ev.message }]; // SLNG codes only (§1.3)
    case 'warning':
      return [];
  }
}

/** Close code and reason (the SLNG code) for a session-ending error: the catalogue's, 1008 for codes that normally keep a session. */
export function unifiedCloseFor(code: ErrorCode): CloseSpec {
  return { code: ERRORS[code].close ?? CloseCode.POLICY, reason: slngErrorCode(code) };
}

/** Create a unified TTS dialect instance. */
export function createUnifiedTtsDialect(o: UnifiedTtsDialectOptions): TtsDialect {
  return {
    name: 'unified',
    implicitInit: false,
    parseText: (text) => parseUnifiedTtsFrame(text, o.maxTextChars),
    binaryFrame: (bytes) => ({
      kind: 'invalid',
      code: 'invalid_request',
      message: `binary frame of ${bytes} bytes rejected: TTS routes take JSON text messages only ({"type":"text","text":"…"})`,
    }),
    oversizedFrame: (bytes, limit) => ({ kind: 'invalid', code: 'payload_too_large', message: `frame of ${bytes} bytes exceeds the ${limit}-byte limit; the frame was rejected` }),
    rejectedText: (message) => ({ kind: 'invalid', code: 'invalid_request', message: `${message}; the frame was rejected` }),
    encode: (ev) => encodeUnifiedTts(ev, o.audio).map((f): WireFrame => (Buffer.isBuffer(f) ? f : JSON.stringify(f))),
    closeFor: unifiedCloseFor,
  };
}
