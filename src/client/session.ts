/**
 * The part every streaming client of the SDK shares (STT in ./stt.ts, TTS in ./tts.ts): the route
 * URL, opening the socket, sending `init`, waiting for the session to be ready (or for `init` to be
 * rejected), parsing JSON frames, the close handshake and `keepalive`. The concrete clients add only
 * their dialect's messages (issue 10 Part 1: one client transport for STT and TTS).
 *
 * Routes (shared/spec/protocols.md §1.1): `direct` = `/v1/{stt|tts}/{model}`, `bridge` =
 * `/v1/bridges/unmute/{stt|tts}/{model}`.
 */
import { TypedEmitter } from './emitter.js';
import { SocketTransport, ReadyState, type AuthMode, type SocketError, type WebSocketConstructor } from './transport.js';

/** Encode a model code for a URL path, leaving `/` and `:` literal (protocols.md §1.1). */
export function modelPath(model: string): string {
  return model
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/%3A/gi, ':'))
    .join('/');
}

/** Events every session client emits; `M` is the dialect's server-frame union. */
export interface SessionClientEvents<M> {
  [event: string]: unknown[];
  /** The session is ready. */
  open: [];
  /** Every JSON frame from the server. */
  message: [M];
  /** The socket closed; `code` per RFC 6455 (1000 normal, 1008 policy, 1006 no close frame …). */
  close: [code: number, reason: string];
  /** Transport-level failure (including a refused upgrade: `statusCode` set under Node) or an undecodable frame. */
  error: [SocketError];
}

/** Where and how to open a session socket. */
export interface SessionTarget {
  /** Base URL, e.g. `ws://127.0.0.1:8080` (http(s):// is accepted and converted). */
  url: string;
  /** `stt` or `tts`: the route family. */
  kind: 'stt' | 'tts';
  /** Catalogue code. */
  model: string;
  /** `direct` (default) or `bridge` (always the unified dialect). */
  route?: 'direct' | 'bridge';
  key?: string;
  auth?: AuthMode;
  WebSocket?: WebSocketConstructor;
}

/** How a dialect's handshake goes. `M` is the server-frame union (each frame has a `type`). */
export interface Handshake<M extends { type: string }> {
  /** The `init` message sent once the socket opens. */
  init: Record<string, unknown>;
  /** The frame that says the session is ready (`ready`, or `Metadata` on Deepgram-style routes). */
  isReady(m: M): boolean;
  /** An error frame: before ready it rejects `connect` with `init rejected: <code>: <message>`. */
  errorOf(m: M): { code: string; message: string } | null;
  /** Called for every frame after `message` was emitted; `fail` reports an error (rejects before ready). */
  onFrame?(m: M, fail: (e: SocketError) => void): void;
  /** Called on close before `close` is emitted. */
  onClose?(code: number, reason: string): void;
}

/**
 * A streaming session client over {@link SocketTransport}. Subclasses call {@link open} then
 * {@link handshake} from their static `connect`, and add their dialect's messages.
 */
export abstract class SessionClient<E extends SessionClientEvents<M>, M extends { type: string }> extends TypedEmitter<E> {
  /** True once the session was ready. */
  protected opened = false;
  /** The close code once the socket closed, else null. */
  protected closeCode: number | null = null;

  protected constructor(readonly transport: SocketTransport) {
    super();
  }

  /**
   * Open the socket of `t`'s route (not yet the session).
   * @throws as {@link SocketTransport.open}.
   */
  protected static openTransport(t: SessionTarget): Promise<SocketTransport> {
    const base = t.url.replace(/\/+$/, '');
    const prefix = t.route === 'bridge' ? `/v1/bridges/unmute/${t.kind}/` : `/v1/${t.kind}/`;
    return SocketTransport.open({ url: `${base}${prefix}${modelPath(t.model)}`, key: t.key, auth: t.auth, WebSocket: t.WebSocket });
  }

  /** The base events, typed for this class's own emits. */
  private get base(): TypedEmitter<SessionClientEvents<M>> {
    return this as unknown as TypedEmitter<SessionClientEvents<M>>;
  }

  /**
   * Send `h.init` when the socket opens and resolve once the session is ready.
   * @throws Error `init rejected: <code>: <message>` (property `code`) when `init` is answered with an
   *   error frame; Error `connection closed before ready: …`; transport errors.
   */
  protected handshake(h: Handshake<M>): Promise<this> {
    const t = this.transport;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: SocketError) => {
        if (!settled) {
          settled = true;
          reject(e);
        } else this.base.emit('error', e);
      };
      t.on('error', fail);
      t.on('open', () => t.sendText(JSON.stringify(h.init)));
      t.on('text', (data) => {
        let msg: M;
        try {
          msg = JSON.parse(data) as M;
        } catch {
          fail(new Error(`server sent a text frame that is not JSON: ${data.slice(0, 80)}`));
          return;
        }
        if (!this.opened && h.isReady(msg)) {
          this.opened = true;
          settled = true;
          resolve(this);
          this.base.emit('open');
        }
        this.base.emit('message', msg);
        h.onFrame?.(msg, fail);
        const err = this.opened ? null : h.errorOf(msg);
        if (err) fail(Object.assign(new Error(`init rejected: ${err.code}: ${err.message}`), { code: err.code }));
      });
      t.on('close', (code, reason) => {
        this.closeCode = code;
        h.onClose?.(code, reason);
        if (!settled) fail(new Error(`connection closed before ready: ${code} ${reason}`.trim()));
        this.base.emit('close', code, reason);
      });
    });
  }

  /** Send one JSON message. */
  protected sendJson(v: Record<string, unknown>): void {
    this.transport.sendText(JSON.stringify(v));
  }

  /** Keep the session alive (`keepalive`). */
  keepAlive(): void {
    this.sendJson({ type: 'keepalive' });
  }

  /**
   * End the session (`close`): resolves with the close code once the server closes (1006 when already
   * closed without a code). When the server has not closed within `timeoutMs` (ms), the client closes
   * the socket itself.
   */
  close(timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      if (this.closeCode !== null || this.transport.socket.readyState === ReadyState.CLOSED) return resolve(this.closeCode ?? 1006);
      const t = setTimeout(() => this.transport.close(1000, 'client timeout waiting for close'), timeoutMs);
      this.base.once('close', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      if (this.transport.isOpen) this.sendJson({ type: 'close' });
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
}
