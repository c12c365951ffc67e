/**
 * A small client for voxgate's streaming STT routes in the SLNG unified dialect
 * (shared/spec/protocols.md §1.3), also usable on Deepgram-style routes (§1.4): it sends the same
 * client messages and surfaces both dialects' server frames as a typed union.
 *
 * One method per socket message (`sendAudio`, `sendAudioBase64`, `finalize`, `keepAlive`, `close`),
 * in the style of the Deepgram JS SDK.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { UnifiedServerMessage } from '../protocol/unified/schema.js';
import type { DeepgramStyleServerMessage } from '../protocol/deepgram-style/schema.js';

/** `init.config` fields (protocols.md §1.3). */
export interface SttClientInit {
  language?: string;
  sample_rate?: number;
  encoding?: string;
  channels?: number;
  enable_partials?: boolean;
  enable_vad?: boolean;
  enable_word_timestamps?: boolean;
  /** ms, or false to disable. */
  endpointing?: number | false;
  [key: string]: unknown;
}

/** Any server frame the client may receive. */
export type SttServerMessage = UnifiedServerMessage | DeepgramStyleServerMessage;

/** Client events. */
export interface SttClientEvents {
  /** The session is ready (`ready`, or the first `Metadata` on Deepgram-style routes). */
  open: [];
  message: [SttServerMessage];
  /** The socket closed; `code` per RFC 6455. */
  close: [code: number, reason: string];
  /** Transport-level failure (including a refused upgrade: `statusCode` set). */
  error: [Error & { statusCode?: number; body?: string }];
}

/** Connection options. */
export interface SttClientOptions {
  /** Base URL, e.g. `ws://127.0.0.1:8080`. */
  url: string;
  /** Catalogue code, e.g. `local/pocketsphinx:en`. */
  model: string;
  /** API key, sent as `Authorization: Bearer`. */
  key?: string;
  init: SttClientInit;
  /** Listener attached before the socket opens, so it also sees `ready`/`Metadata` and init errors. */
  onMessage?: (m: SttServerMessage) => void;
}

/** Encode a model code for a URL path, leaving `/` and `:` literal (protocols.md §1.1). */
export function modelPath(model: string): string {
  return model
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/%3A/gi, ':'))
    .join('/');
}

/** A streaming STT connection. Create with {@link SttClient.connect}. */
export class SttClient extends EventEmitter<SttClientEvents> {
  private opened = false;

  private constructor(readonly ws: WebSocket) {
    super();
  }

  /**
   * Open the socket and send `init`. Resolves once the session is ready.
   * @throws Error (with `statusCode`/`body`) when the upgrade is refused, or when the server
   *   answers `init` with an error and closes.
   */
  static connect(o: SttClientOptions): Promise<SttClient> {
    const base = o.url.replace(/\/+$/, '');
    const ws = new WebSocket(`${base}/v1/stt/${modelPath(o.model)}`, {
      headers: o.key ? { Authorization: `Bearer ${o.key}` } : {},
    });
    const c = new SttClient(ws);
    if (o.onMessage) c.on('message', o.onMessage);
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: Error & { statusCode?: number; body?: string }) => {
        if (!settled) {
          settled = true;
          reject(e);
        } else c.emit('error', e);
      };
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          let msg = body;
          try {
            msg = (JSON.parse(body) as { message?: string }).message ?? body;
          } catch {
            /* not JSON */
          }
          fail(Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode}: ${msg}`), { statusCode: res.statusCode, body }));
        });
      });
      ws.on('error', (err) => fail(err));
      ws.on('open', () => ws.send(JSON.stringify({ type: 'init', config: o.init })));
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        let msg: SttServerMessage;
        try {
          msg = JSON.parse(data.toString()) as SttServerMessage;
        } catch {
          return;
        }
        if (!c.opened && (msg.type === 'ready' || msg.type === 'Metadata')) {
          c.opened = true;
          settled = true;
          resolve(c);
          c.emit('open');
        }
        c.emit('message', msg);
        if (!c.opened && (msg.type === 'error' || msg.type === 'Error')) {
          fail(new Error(`init rejected: ${msg.code}: ${msg.message}`));
        }
      });
      ws.on('close', (code, reason) => {
        if (!settled) fail(new Error(`connection closed before ready: ${code} ${reason.toString()}`));
        c.emit('close', code, reason.toString());
      });
    });
  }

  /** Send raw audio bytes as one binary frame. */
  sendAudio(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  /** Send audio as `{"type":"audio","data":"<base64>"}`. */
  sendAudioBase64(bytes: Uint8Array): void {
    this.ws.send(JSON.stringify({ type: 'audio', data: Buffer.from(bytes).toString('base64') }));
  }

  /** Flush the utterance in progress; a final with `from_finalize: true` follows. */
  finalize(): void {
    this.ws.send(JSON.stringify({ type: 'finalize' }));
  }

  /** Keep the session alive during silence. */
  keepAlive(): void {
    this.ws.send(JSON.stringify({ type: 'keepalive' }));
  }

  /** No more audio: the server delivers remaining finals and closes (1000). Resolves with the close code. */
  close(): Promise<number> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve(1006);
      this.once('close', (code) => resolve(code));
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'close' }));
    });
  }

  /** Bytes queued in the socket but not yet sent (for pacing). */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
}
