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
import { TypedEmitter } from './emitter.js';
import { SocketTransport, bytesToBase64, ReadyState, type AuthMode, type SocketError, type WebSocketConstructor } from './transport.js';

export type { SocketError, WebSocketConstructor, AuthMode } from './transport.js';

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

/** Client events. */
export interface SttClientEvents {
  [event: string]: unknown[];
  /** The session is ready (`ready`, or the first `Metadata` on Deepgram-style routes). */
  open: [];
  message: [SttServerMessage];
  /** The socket closed; `code` per RFC 6455 (1000 normal, 1008 policy, 1006 no close frame …). */
  close: [code: number, reason: string];
  /** Transport-level failure (including a refused upgrade: `statusCode` set under Node). */
  error: [SocketError];
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

/** Encode a model code for a URL path, leaving `/` and `:` literal (protocols.md §1.1). */
export function modelPath(model: string): string {
  return model
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/%3A/gi, ':'))
    .join('/');
}

/** A streaming STT connection. Create with {@link SttClient.connect}. */
export class SttClient extends TypedEmitter<SttClientEvents> {
  private opened = false;
  private closeCode: number | null = null;
  private endingReason: string | null = null;

  private constructor(readonly transport: SocketTransport) {
    super();
  }

  /**
   * Open the socket and send `init`. Resolves once the session is ready.
   * @throws Error (with `statusCode`/`body` under Node) when the upgrade is refused or the socket
   *   fails; Error `init rejected: <code>: <message>` when the server answers `init` with an error.
   */
  static async connect(o: SttClientOptions): Promise<SttClient> {
    const base = o.url.replace(/\/+$/, '');
    const prefix = o.route === 'bridge' ? '/v1/bridges/unmute/stt/' : '/v1/stt/';
    const transport = await SocketTransport.open({ url: `${base}${prefix}${modelPath(o.model)}`, key: o.key, auth: o.auth, WebSocket: o.WebSocket });
    const c = new SttClient(transport);
    if (o.onMessage) c.on('message', o.onMessage);
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: SocketError) => {
        if (!settled) {
          settled = true;
          reject(e);
        } else c.emit('error', e);
      };
      transport.on('error', fail);
      transport.on('open', () => transport.sendText(JSON.stringify({ type: 'init', config: o.init })));
      transport.on('text', (data) => {
        let msg: SttServerMessage;
        try {
          msg = JSON.parse(data) as SttServerMessage;
        } catch {
          fail(new Error(`server sent a text frame that is not JSON: ${data.slice(0, 80)}`));
          return;
        }
        if (!c.opened && (msg.type === 'ready' || msg.type === 'Metadata')) {
          c.opened = true;
          settled = true;
          resolve(c);
          c.emit('open');
        }
        c.emit('message', msg);
        if ((msg.type === 'error' || msg.type === 'Error') && SESSION_ENDING_CODES.has(msg.code)) c.markEnding(`${msg.code}: ${msg.message}`);
        if (!c.opened && (msg.type === 'error' || msg.type === 'Error')) {
          fail(Object.assign(new Error(`init rejected: ${msg.code}: ${msg.message}`), { code: msg.code }));
        }
      });
      transport.on('close', (code, reason) => {
        c.closeCode = code;
        c.markEnding(`closed ${code}${reason ? ` ${reason}` : ''}`);
        if (!settled) fail(new Error(`connection closed before ready: ${code} ${reason}`.trim()));
        c.emit('close', code, reason);
      });
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
    this.transport.sendText(JSON.stringify({ type: 'finalize' }));
  }

  /** Keep the session alive during silence. */
  keepAlive(): void {
    this.transport.sendText(JSON.stringify({ type: 'keepalive' }));
  }

  /**
   * No more audio: the server delivers remaining finals and closes (1000). Resolves with the close
   * code (1006 when already closed without a code). When the server has not closed within
   * `timeoutMs` (ms), the client closes the socket itself.
   */
  close(timeoutMs = 30_000): Promise<number> {
    return new Promise((resolve) => {
      if (this.closeCode !== null || this.transport.socket.readyState === ReadyState.CLOSED) return resolve(this.closeCode ?? 1006);
      const t = setTimeout(() => this.transport.close(1000, 'client timeout waiting for close'), timeoutMs);
      this.once('close', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      if (this.transport.isOpen) this.transport.sendText(JSON.stringify({ type: 'close' }));
    });
  }

  /** Close the socket at once, without draining (e.g. the user navigated away). */
  abort(): void {
    this.transport.close(1000, 'client abort');
  }

  /** True while the socket is open. */
  get isOpen(): boolean {
    return this.transport.isOpen;
  }

  /** Bytes queued in the socket but not yet sent (for pacing). */
  get bufferedAmount(): number {
    return this.transport.bufferedAmount;
  }
}
