/**
 * The SDK's WebSocket transport, isomorphic: in browsers it uses the global `WebSocket`; in Node it
 * uses the `ws` package (Node 20 has no global WebSocket), loaded lazily so bundlers for the browser
 * never pull it in. A caller may also inject any WHATWG-compatible constructor.
 *
 * Authentication (shared/spec/protocols.md §1.2): browsers cannot set headers on a WebSocket, so the
 * key goes in `?token=<key>`; with `ws` it goes in `Authorization: Bearer <key>` (keys in URLs end
 * up in proxy logs). `auth: 'query' | 'header'` overrides the choice.
 *
 * A refused upgrade (HTTP 401/404 …) is reported with its status and JSON `message` under `ws`;
 * browsers expose no detail (only a failed socket and close 1006), which callers should diagnose
 * with an HTTP request (the playground checks the key with `GET /v1/status`).
 */
import { TypedEmitter } from './emitter.js';

/** The subset of the WHATWG `WebSocket` interface the SDK uses (browser `WebSocket` and `ws` both fit). */
export interface WebSocketLike {
  /** 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED. */
  readonly readyState: number;
  /** Bytes queued by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
  binaryType: string;
  /* eslint-disable @typescript-eslint/no-explicit-any -- event types differ between DOM and ws */
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor; `options.headers` is honoured by `ws` and ignored by browsers. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) => WebSocketLike;

/** WebSocket `readyState` values (WHATWG). */
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;

/** A transport failure. `statusCode`/`body` are set when the HTTP upgrade was refused (Node only). */
export interface SocketError extends Error {
  statusCode?: number;
  body?: string;
}

/** How the API key is presented: `auto` = header with `ws`, `?token=` otherwise. */
export type AuthMode = 'auto' | 'header' | 'query';

/** Options of {@link SocketTransport.open}. */
export interface TransportOptions {
  /** Full ws:// or wss:// URL (http(s):// is converted), without the key. */
  url: string;
  /** API key; omitted = no authentication sent. */
  key?: string;
  auth?: AuthMode;
  /** WebSocket implementation to use instead of the default (global `WebSocket` / `ws`). */
  WebSocket?: WebSocketConstructor;
}

/** Events of {@link SocketTransport}. */
export interface TransportEvents {
  [event: string]: unknown[];
  open: [];
  /** A text frame. */
  text: [data: string];
  /** A binary frame. */
  binary: [data: Uint8Array];
  /** The socket closed; `code` per RFC 6455 (1006 = closed without a close frame). Emitted once. */
  close: [code: number, reason: string];
  /** A transport failure (connect failure, refused upgrade, socket error). */
  error: [err: SocketError];
}

let wsModule: Promise<WebSocketConstructor> | null = null;

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/**
 * The default WebSocket constructor: `ws` under Node, the global `WebSocket` elsewhere.
 * @throws Error when neither is available.
 */
export async function defaultWebSocket(): Promise<{ ctor: WebSocketConstructor; headers: boolean }> {
  if (isNode()) {
    // A non-literal specifier keeps browser bundlers (Vite) from resolving `ws`.
    const spec = 'ws';
    wsModule ??= import(/* @vite-ignore */ spec).then((m: { default: WebSocketConstructor }) => m.default);
    return { ctor: await wsModule, headers: true };
  }
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!g) throw new Error('no WebSocket implementation available: pass options.WebSocket');
  return { ctor: g, headers: false };
}

/** `url` with a `token` query parameter replaced by `REDACTED`, for messages and logs. */
export function redactToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1REDACTED');
}

/** Base64 (RFC 4648) of bytes, without `Buffer` (browser-safe). */
export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/**
 * Bytes of a base64 string, without `Buffer` (browser-safe).
 * @throws Error (DOMException `InvalidCharacterError`) when `b64` is not valid base64.
 */
export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * One WebSocket connection with normalised events (`text` / `binary` as `Uint8Array` / `close` once
 * / `error` with the refused upgrade's HTTP status when known).
 */
export class SocketTransport extends TypedEmitter<TransportEvents> {
  private closed = false;
  private opened = false;

  private constructor(
    readonly socket: WebSocketLike,
    /** The URL without the key, for messages. */
    readonly displayUrl: string,
  ) {
    super();
  }

  /**
   * Create the socket (connection starts at once). Listeners attached synchronously after the
   * returned promise resolves see every event.
   * @throws Error when no WebSocket implementation is available or the URL is invalid.
   */
  static async open(o: TransportOptions): Promise<SocketTransport> {
    const def = o.WebSocket ? { ctor: o.WebSocket, headers: false } : await defaultWebSocket();
    const auth = o.auth ?? 'auto';
    const useHeader = o.key !== undefined && (auth === 'header' || (auth === 'auto' && def.headers));
    let url = o.url.replace(/^http(s?):\/\//i, 'ws$1://');
    if (o.key !== undefined && !useHeader) url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(o.key)}`;
    const socket = useHeader ? new def.ctor(url, undefined, { headers: { Authorization: `Bearer ${o.key}` } }) : new def.ctor(url);
    const t = new SocketTransport(socket, redactToken(url));
    t.wire();
    return t;
  }

  /** True once the socket is open and until it closes. */
  get isOpen(): boolean {
    return this.socket.readyState === ReadyState.OPEN;
  }

  /** Bytes queued but not yet sent (for pacing). */
  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  /** Send a text frame (dropped with an `error` event when the socket is not open). */
  sendText(data: string): void {
    this.send(data);
  }

  /** Send a binary frame (dropped with an `error` event when the socket is not open). */
  sendBinary(data: Uint8Array): void {
    this.send(data);
  }

  /** Start the closing handshake (or abort a connecting socket). */
  close(code = 1000, reason = ''): void {
    if (this.socket.readyState === ReadyState.CLOSED) return;
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.close();
    }
  }

  private send(data: string | Uint8Array): void {
    if (this.socket.readyState !== ReadyState.OPEN) {
      this.emit('error', new Error(`cannot send: socket ${this.closed ? 'closed' : 'not open'}`));
      return;
    }
    this.socket.send(data);
  }

  private wire(): void {
    const s = this.socket;
    s.binaryType = 'arraybuffer';
    // `ws` only: read the body of a refused upgrade (401/404 JSON) instead of a bare failure.
    const nodeWs = s as unknown as { on?: (ev: string, fn: (...a: never[]) => void) => void };
    if (typeof nodeWs.on === 'function') {
      nodeWs.on('unexpected-response', ((_req: unknown, res: { statusCode: number; on(ev: string, fn: (d?: Uint8Array) => void): void }) => {
        let body = '';
        const dec = new TextDecoder();
        res.on('data', (d) => (body += dec.decode(d, { stream: true })));
        res.on('end', () => {
          let msg = body;
          try {
            msg = (JSON.parse(body) as { message?: string }).message ?? body;
          } catch {
            /* not JSON */
          }
          const err: SocketError = Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode}: ${msg}`), { statusCode: res.statusCode, body });
          this.emit('error', err);
          this.finish(1006, `HTTP ${res.statusCode}`);
          this.close();
        });
      }) as never);
    }
    s.onopen = () => {
      this.opened = true;
      this.emit('open');
    };
    s.onmessage = (ev: { data: unknown }) => {
      const d = ev.data;
      if (typeof d === 'string') this.emit('text', d);
      else if (d instanceof ArrayBuffer) this.emit('binary', new Uint8Array(d));
      else if (ArrayBuffer.isView(d)) this.emit('binary', new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    };
    s.onerror = (ev: { error?: unknown; message?: string }) => {
      if (this.closed) return;
      const detail = ev?.error instanceof Error ? ev.error.message : ev?.message;
      const msg = this.opened
        ? `WebSocket error on ${this.displayUrl}${detail ? `: ${detail}` : ''}`
        : `could not connect to ${this.displayUrl}${detail ? `: ${detail}` : ' (the server refused the upgrade — bad key or unknown model — or is unreachable)'}`;
      this.emit('error', new Error(msg));
    };
    s.onclose = (ev: { code?: number; reason?: string }) => this.finish(ev?.code ?? 1006, ev?.reason ?? '');
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', code, reason);
  }
}
