/**
 * A small client for voxgate's streaming STT routes in the SLNG unified dialect
 * (shared/spec/protocols.md §1.3), also usable on Deepgram-style routes (§1.4): it sends the same
 * client messages and surfaces both dialects' server frames as a typed union.
 *
 * Isomorphic: runs in Node (over `ws`, key in `Authorization: Bearer`) and in browsers (global
 * `WebSocket`, key in `?token=`); see ./transport.ts. The browser playground (web/) uses it.
 *
 * One method per socket message (`sendAudio`, `sendAudioBase64`, `finalize`, `keepAlive`, `close`),
 * in the style of the Deepgram JS SDK.
 */
import type { UnifiedServerMessage } from '../protocol/unified/schema.js';
import type { DeepgramStyleServerMessage } from '../protocol/deepgram-style/schema.js';
import { ERRORS, type ErrorCode } from '../util/errors.js';
import { SessionClient, type SessionClientEvents } from './session.js';
import { bytesToBase64, type AuthMode, type WebSocketConstructor } from './transport.js';

export type { SocketError, WebSocketConstructor, AuthMode } from './transport.js';
export { modelPath } from './session.js';

/** `init.config` fields (protocols.md §1.3). */
export interface SttClientInit {
  language?: string;
  /** Hz; one of the §1.3 `SampleRate` values (8000 … 48000). */
  sample_rate?: number;
  /** `linear16` (16-bit little-endian PCM), `mulaw`, `alaw`. */
  encoding?: string;
  channels?: number;
  enable_partials?: boolean;
  enable_vad?: boolean;
  /** Ask for `words` [{word, start, end (s), confidence (0–1)}] on finals. */
  enable_word_timestamps?: boolean;
  /** ms, or false to disable. */
  endpointing?: number | false;
  [key: string]: unknown;
}

/**
 * Error codes after which the server ends the session (those with a close code in
 * src/util/errors.ts, e.g. `idle_timeout_exceeded`, `max_connection_duration_exceeded`,
 * `config_error`). Others (`invalid_request`, `payload_too_large`, `backpressure`) leave it open.
 */
export const SESSION_ENDING_CODES: ReadonlySet<string> = new Set((Object.keys(ERRORS) as ErrorCode[]).filter((c) => ERRORS[c].close !== null));

/** Any server frame the client may receive. */
export type SttServerMessage = UnifiedServerMessage | DeepgramStyleServerMessage;

/**
 * Client events: `open` (the session is ready: `ready`, or the first `Metadata` on Deepgram-style
 * routes), `message`, `close`, `error` (./session.ts), and `ending`.
 */
export interface SttClientEvents extends SessionClientEvents<SttServerMessage> {
  /**
   * The server ended, or began ending, the session: a session-ending error frame
   * ({@link SESSION_ENDING_CODES}) or the close. Emitted once, before `close`. From now on
   * {@link SttClient.sendAudio} sends nothing (the server would not transcribe it).
   */
  ending: [reason: string];
}

/** Connection options. */
export interface SttClientOptions {
  /** Base URL, e.g. `ws://127.0.0.1:8080` (http(s):// is accepted and converted). */
  url: string;
  /** Catalogue code, e.g. `local/pocketsphinx:en`. */
  model: string;
  /** API key: `Authorization: Bearer` under Node, `?token=` in browsers (see `auth`). */
  key?: string;
  /** How the key is presented; default `auto`. */
  auth?: AuthMode;
  /**
   * `direct` (default): `/v1/stt/{model}`, in the dialect the catalogue gives the model;
   * `bridge`: `/v1/bridges/unmute/stt/{model}`, always the unified dialect (§1.1).
   */
  route?: 'direct' | 'bridge';
  init: SttClientInit;
  /** Listener attached before the socket opens, so it also sees `ready`/`Metadata` and init errors. */
  onMessage?: (m: SttServerMessage) => void;
  /** WebSocket implementation override (default: global `WebSocket` in browsers, `ws` in Node). */
  WebSocket?: WebSocketConstructor;
}

/** A streaming STT connection. Create with {@link SttClient.connect}. */
export class SttClient extends SessionClient<SttClientEvents, SttServerMessage> {
  private endingReason: string | null = null;

  /**
   * Open the socket and send `init`. Resolves once the session is ready.
   * @throws Error (with `statusCode`/`body` under Node) when the upgrade is refused or the socket
   *   fails; Error `init rejected: <code>: <message>` when the server answers `init` with an error.
   */
  static async connect(o: SttClientOptions): Promise<SttClient> {
    const c = new SttClient(await SessionClient.openTransport({ ...o, kind: 'stt' }));
    if (o.onMessage) c.on('message', o.onMessage);
    return c.handshake({
      init: { type: 'init', config: o.init },
      isReady: (m) => m.type === 'ready' || m.type === 'Metadata',
      errorOf: (m) => (m.type === 'error' || m.type === 'Error' ? m : null),
      onFrame: (m) => {
        if ((m.type === 'error' || m.type === 'Error') && SESSION_ENDING_CODES.has(m.code)) c.markEnding(`${m.code}: ${m.message}`);
      },
      onClose: (code, reason) => c.markEnding(`closed ${code}${reason ? ` ${reason}` : ''}`),
    });
  }

  private markEnding(reason: string): void {
    if (this.endingReason !== null) return;
    this.endingReason = reason;
    this.emit('ending', reason);
  }

  /**
   * Why the server ended (or is ending) the session — `"<code>: <message>"` of the session-ending
   * error frame, or `"closed <code> <reason>"` — or null while the session is live.
   */
  get ending(): string | null {
    return this.endingReason;
  }

  /**
   * Send raw audio bytes (declared `encoding`/`sample_rate`) as one binary frame.
   * @returns false, sending nothing, once the server has ended or begun ending the session
   *   ({@link ending}; e.g. after `max_connection_duration_exceeded`) or the socket is not open:
   *   audio sent then would not be transcribed. True when the frame was queued.
   */
  sendAudio(bytes: Uint8Array): boolean {
    if (this.endingReason !== null || !this.transport.isOpen) return false;
    this.transport.sendBinary(bytes);
    return true;
  }

  /** Send audio as `{"type":"audio","data":"<base64>"}`. Returns false, sending nothing, as {@link sendAudio}. */
  sendAudioBase64(bytes: Uint8Array): boolean {
    if (this.endingReason !== null || !this.transport.isOpen) return false;
    this.transport.sendText(JSON.stringify({ type: 'audio', data: bytesToBase64(bytes) }));
    return true;
  }

  /** Flush the utterance in progress; a final with `from_finalize: true` follows. */
  finalize(): void {
    this.sendJson({ type: 'finalize' });
  }

  /**
   * No more audio: the server delivers remaining finals and closes (1000). Resolves with the close
   * code (1006 when already closed without a code). When the server has not closed within
   * `timeoutMs` (ms), the client closes the socket itself.
   */
  override close(timeoutMs = 30_000): Promise<number> {
    return super.close(timeoutMs);
  }

  /** Bytes queued in the socket but not yet sent (for pacing). */
  get bufferedAmount(): number {
    return this.transport.bufferedAmount;
  }
}
