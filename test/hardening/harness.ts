/**
 * Harness of the hardening suite (issue 14): a real gateway on 127.0.0.1:0 with configuration
 * overrides, and raw-socket HTTP helpers that send exactly the bytes an attacker would (headers
 * without a body, a body that stops, …) and report what the server answered and when it closed.
 * Every wait is bounded so a regression fails instead of hanging.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { loadConfig, type VoxgateConfig } from '../../src/config/config.js';
import type { RunningVoxgate } from '../../src/server/bootstrap.js';
import { startConfiguredServer } from '../helpers.js';

/** A running hardening test server and a valid key. */
export interface HardServer extends RunningVoxgate {
  key: string;
  wsUrl: string;
  cleanup(): Promise<void>;
}

/** Configuration overrides by section. */
export interface Overrides {
  http?: Partial<VoxgateConfig['http']>;
  limits?: Partial<VoxgateConfig['limits']>;
  metrics?: Partial<VoxgateConfig['metrics']>;
  maxDecoders?: number;
}

/** Start a gateway with the built-in catalogue (STT + TTS engines) and `o` applied. */
export async function startHardServer(o: Overrides = {}): Promise<HardServer> {
  const base = loadConfig();
  const config: VoxgateConfig = {
    ...base,
    http: { ...base.http, ...o.http },
    limits: { ...base.limits, ...o.limits },
    metrics: { ...base.metrics, ...o.metrics },
    engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: o.maxDecoders ?? 3 } },
  };
  return startConfiguredServer(config, 'hardening');
}

/** What a raw HTTP exchange produced. */
export interface RawResponse {
  /** HTTP status, or 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Request body bytes the client had written when the response head arrived (or at close). */
  sentBeforeAnswer: number;
}

/** A raw TCP HTTP client on which the test controls every byte. */
export class RawHttp {
  readonly socket: net.Socket;
  private data = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  /** Body bytes written so far (after the head). */
  bodySent = 0;
  closed = false;
  readonly connected: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('close', () => reject(new Error('connection closed before it was established')));
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Write the request head. */
  head(method: string, target: string, headers: Record<string, string | number>): void {
    const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    this.socket.write(lines.join('\r\n') + '\r\n\r\n');
  }

  /** Write body bytes (ignored once closed). @returns false when the socket is gone. */
  body(chunk: Buffer | string): boolean {
    if (this.closed || this.socket.destroyed) return false;
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.bodySent += b.length;
    this.socket.write(b);
    return true;
  }

  /** Has a response head arrived? */
  get answered(): boolean {
    return this.data.includes('\r\n\r\n');
  }

  /**
   * Wait for a full response (head, and the body when it has Content-Length) or the close, at most `ms`.
   * @throws when neither happens in time.
   */
  async response(ms = 10_000): Promise<RawResponse> {
    const deadline = Date.now() + ms;
    let sentAtHead = -1;
    for (;;) {
      if (this.answered && sentAtHead < 0) sentAtHead = this.bodySent;
      const parsed = this.parse();
      if (parsed && (parsed.complete || this.closed)) return { ...parsed.res, closed: this.closed, sentBeforeAnswer: sentAtHead >= 0 ? sentAtHead : this.bodySent };
      if (this.closed) return { status: 0, headers: {}, body: '', closed: true, sentBeforeAnswer: this.bodySent };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${ms} ms (server neither answered nor closed)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Wait until the server closes the connection, at most `ms`. @returns true when it closed. */
  async waitClose(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parse(): { res: Omit<RawResponse, 'closed' | 'sentBeforeAnswer'>; complete: boolean } | null {
    const end = this.data.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const [statusLine, ...lines] = this.data.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const body = this.data.subarray(end + 4);
    const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : null;
    return { res: { status, headers, body: body.toString('utf8') }, complete: len !== null ? body.length >= len : false };
  }
}

/** Open a WebSocket and collect its text frames and close. */
export class WsProbe {
  readonly ws: WebSocket;
  readonly texts: Record<string, unknown>[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  constructor(url: string, key: string) {
    this.ws = new WebSocket(url, { headers: { Authorization: `Bearer ${key}` }, maxPayload: 64 * 1024 * 1024 });
    this.ws.on('message', (d, isBinary) => {
      if (isBinary) return;
      try {
        this.texts.push(JSON.parse(d.toString()) as Record<string, unknown>);
      } catch {
        this.texts.push({ unparsed: d.toString() });
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Wait for a text frame matching `pred`, at most `ms`. */
  async waitFor(pred: (m: Record<string, unknown>) => boolean, ms = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.texts.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(this.texts).slice(0, 400)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The close, or an error after `ms`. */
  async close(ms = 10_000): Promise<{ code: number; reason: string }> {
    return await Promise.race([this.closed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no close within ${ms} ms`)), ms).unref())]);
  }
}

/** `n` levels of nested arrays: `[[[…]]]`, `bytes` long at most (valid JSON). */
export function nestedArrays(bytes: number): string {
  const n = Math.floor(bytes / 2);
  return '['.repeat(n) + ']'.repeat(n);
}
