/**
 * Deepgram live STT `/v1/listen` (shared/spec/protocols.md §2): configuration by query string (§2.2),
 * binary audio plus `KeepAlive` / `Finalize` / `CloseStream` text frames (§2.3), and the server frames
 * `Results`, `UtteranceEnd`, `SpeechStarted` and a closing `Metadata` (§2.4). There is no JSON error
 * frame in v1: every error is a close code with a reason (§2.5):
 *
 * | condition                                          | close | reason prefix |
 * |----------------------------------------------------|-------|---------------|
 * | `CloseStream` (or the legacy empty binary frame)   | 1000  | —             |
 * | undecodable audio, bad frame, invalid text message | 1008  | `DATA-0000`   |
 * | frame over the size limit                          | 1009  | `BIG-0000`    |
 * | 10 s without audio or a text message               | 1011  | `NET-0001`    |
 * | session longer than the configured maximum         | 1011  | `NET-0003`    |
 * | engine failure                                     | 1011  | `NET-0000`    |
 * | over capacity (a race past the handshake's 429)    | 1013  | `NET-0000`    |
 *
 * The frames are built by ./shape.ts (shared with the Deepgram-style route and pre-recorded
 * responses); formatting (`punctuate`, `smart_format`, `numerals`) is applied there with
 * `src/text/format.ts`, and `punctuated_word` appears only when one of them is on (as in Deepgram).
 */
import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../../util/errors.js';
import type { FormatOptions } from '../../text/format.js';
import type { ClientCommand, DialectClose, SessionEvent, SttDialect, SttInitRequest } from '../events.js';
import { deepgramLiveFrames, requestMetadata, type DeepgramListenFrame } from './shape.js';
import type { ListenOptions } from './query.js';
import { listenClientMessageSchema } from './schema.js';

/** Deepgram's default `endpointing` when the query does not set it (§2.2): 10 ms. */
export const DEEPGRAM_DEFAULT_ENDPOINTING_MS = 10;
/** Deepgram's inactivity window (§2.5): 10 s without audio or a text message → 1011 `NET-0001`. */
export const DEEPGRAM_IDLE_SECONDS = 10;

/**
 * Translate parsed query options into the dialect-neutral init request (validated afterwards by the
 * session's `resolveInit`, which raises `config_error` for what the engine cannot serve).
 * `sample_rate` is only read when `encoding` is set (§2.2).
 */
export function listenInit(o: ListenOptions): SttInitRequest {
  return {
    language: o.language,
    // No `encoding`: containerised audio (§2.2), sniffed from the first bytes by the decoder.
    encoding: o.encoding ?? 'auto',
    sampleRate: o.encoding ? o.sampleRate : undefined,
    channels: o.channels,
    multichannel: o.multichannel,
    partials: o.interimResults,
    vad: true,
    wordTimestamps: true,
    endpointingMs: o.endpointing === undefined ? DEEPGRAM_DEFAULT_ENDPOINTING_MS : o.endpointing,
    vadEvents: o.vadEvents,
    // §2.2: utterance_end_ms requires interim_results.
    utteranceEndMs: o.interimResults ? o.utteranceEndMs : null,
    ...(o.diarizeOptions ? { diarize: o.diarizeOptions } : {}),
  };
}

/** The close that reports an error code on `/v1/listen` (the catalogue's `deepgramListenClose`, util/errors.ts; §2.5). */
export function listenCloseFor(code: ErrorCode, message: string): DialectClose {
  const { code: closeCode, tag } = ERRORS[code].deepgramListenClose;
  const detail =
    code === 'idle_timeout_exceeded'
      ? 'did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001'
      : message;
  return { code: closeCode, reason: truncateUtf8(`${tag}: ${detail}`, 123) };
}

/** Cut a string to at most `max` UTF-8 bytes (a close reason may hold 123). */
function truncateUtf8(s: string, max: number): string {
  let out = s;
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1);
  return out;
}

/** Parse one `/v1/listen` client text frame (§2.3). Never throws. */
export function parseListenText(text: string): ClientCommand {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: 'invalid_request', message: 'text frame is not JSON; expected KeepAlive, Finalize or CloseStream' };
  }
  const parsed = listenClientMessageSchema.safeParse(json);
  if (!parsed.success) {
    const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
    return {
      kind: 'invalid',
      code: 'invalid_request',
      message:
        typeof type === 'string' && !['KeepAlive', 'Finalize', 'CloseStream'].includes(type)
          ? `unknown message type "${type.slice(0, 40)}"; expected KeepAlive, Finalize or CloseStream`
          : `invalid control message: ${z.prettifyError(parsed.error)}`,
    };
  }
  switch (parsed.data.type) {
    case 'KeepAlive':
      return { kind: 'keepalive' };
    case 'Finalize':
      return { kind: 'finalize' };
    case 'CloseStream':
      return { kind: 'close' };
  }
}

/**
 * Encode one session event as `/v1/listen` frames (pure), with the shared Deepgram shapes of
 * ./shape.ts. Interim `Results` carry words and a confidence too (src/protocol/interim.ts).
 * @param fmt the session's formatting options (from `punctuate`/`smart_format`/`numerals`).
 */
export function encodeListen(ev: SessionEvent, fmt: FormatOptions): DeepgramListenFrame[] {
  const live = deepgramLiveFrames(ev, fmt);
  if (live) return live;
  switch (ev.kind) {
    case 'ended':
      return [
        {
          type: 'Metadata',
          ...requestMetadata({
            requestId: ev.info.requestId,
            sha256: ev.sha256,
            created: ev.info.createdAt,
            duration: ev.audioSeconds,
            channels: ev.info.channels,
            model: { code: ev.info.model.code, engine: ev.info.engine },
          }),
        },
      ];
    default:
      // `ready`, `error`: v1 sends nothing at open, and errors are close codes (the session closes via listenCloseFor).
      return [];
  }
}

/** Create the `/v1/listen` dialect for one session configured by `opts` (§2). */
export function createListenDialect(opts: ListenOptions): SttDialect {
  const fmt: FormatOptions = { punctuate: opts.punctuate || opts.smartFormat, smartFormat: opts.smartFormat, numerals: opts.numerals || opts.smartFormat };
  return {
    name: 'deepgram',
    alwaysWords: true,
    idleTimeoutSeconds: DEEPGRAM_IDLE_SECONDS,
    emptyBinaryCloses: true,
    parseText: parseListenText,
    encode: (ev) => encodeListen(ev, fmt).map((m) => JSON.stringify(m)),
    closeFor: listenCloseFor,
  };
}
