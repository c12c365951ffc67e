/**
 * Test harness: a real gateway on 127.0.0.1:0 with a temporary data directory, real `ws` clients,
 * and real audio from ../shared/data.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig, type VoxgateConfig } from '../src/config/config.js';
import { startVoxgate, type RunningVoxgate } from '../src/server/bootstrap.js';
import { readWavFile } from '../src/audio/wav.js';
import { packageRoot } from '../src/util/paths.js';
import { sharedData } from './paths.js';

export { sharedData };
/** The repository root. */
export const repoRoot = packageRoot;



/** A clip as 16-bit little-endian bytes plus its format. */
export interface Clip {
  bytes: Buffer;
  samples: Int16Array;
  sampleRate: number;
  channels: number;
  seconds: number;
}

/** Load a WAV from ../shared/data. */
export async function loadClip(rel: string): Promise<Clip> {
  const w = await readWavFile(sharedData(rel));
  const bytes = Buffer.from(w.samples.buffer, w.samples.byteOffset, w.samples.byteLength);
  return { bytes, samples: w.samples, sampleRate: w.sampleRate, channels: w.channels, seconds: w.samples.length / w.channels / w.sampleRate };
}

/** A running test gateway plus an API key for it. */
export interface TestServer extends RunningVoxgate {
  key: string;
  wsUrl: string;
  cleanup(): Promise<void>;
}

/** Start a gateway with test defaults; `limits` override the default limits. */
export async function startTestServer(limits: Partial<VoxgateConfig['limits']> = {}, engines: VoxgateConfig['engines'] = {}): Promise<TestServer> {
  const base = loadConfig();
  return startConfiguredServer({ ...base, limits: { ...base.limits, ...limits }, engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 6 }, ...engines } });
}

/**
 * Start a gateway on 127.0.0.1:0 with exactly `config`, a temporary data directory (removed by
 * `cleanup`) and an API key named `keyName`.
 */
export async function startConfiguredServer(config: VoxgateConfig, keyName = 'test'): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'voxgate-test-'));
  const v = await startVoxgate({ port: 0, host: '127.0.0.1', dataDir, config, logLevel: process.env.VOXGATE_TEST_LOG ?? 'silent' });
  const { key } = await v.store.createKey(keyName); // SQLite or Postgres (config.storage.url)
  return {
    ...v,
    key,
    wsUrl: `ws://127.0.0.1:${v.port}`,
    async cleanup() {
      await v.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A raw WebSocket session that records every text frame it receives. */
export class RecordingClient {
  readonly messages: Record<string, unknown>[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  private closeInfo: { code: number; reason: string } | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const m = JSON.parse(data.toString()) as Record<string, unknown>;
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters) w.reject(new Error(`closed (${code} ${reason.toString()}) while waiting; got ${JSON.stringify(this.messages)}`));
        this.waiters = [];
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {});
  }

  /** Resolve with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: Record<string, unknown>) => boolean, timeoutMs = 15000): Promise<Record<string, unknown>> {
    const seen = this.messages.find(pred);
    if (seen) return Promise.resolve(seen);
    if (this.closeInfo) return Promise.reject(new Error(`already closed (${this.closeInfo.code}); got ${JSON.stringify(this.messages)}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout waiting; got ${JSON.stringify(this.messages)}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }

  /** Wait for a message of this `type`. */
  waitType(type: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.waitFor((m) => m.type === type, timeoutMs);
  }

  sendJson(v: unknown): void {
    this.ws.send(JSON.stringify(v));
  }

  /** Send bytes in binary frames of `chunk` bytes (as fast as the socket takes them). */
  async sendBinary(bytes: Uint8Array, chunk = 3200): Promise<void> {
    for (let o = 0; o < bytes.length; o += chunk) {
      this.ws.send(bytes.subarray(o, o + chunk));
      if (this.ws.bufferedAmount > 1 << 20) await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Send bytes as base64 `audio` messages of `chunk` bytes. */
  sendBase64(bytes: Uint8Array, chunk = 3200): void {
    for (let o = 0; o < bytes.length; o += chunk) this.sendJson({ type: 'audio', data: Buffer.from(bytes.subarray(o, o + chunk)).toString('base64') });
  }

  /** Messages of one type so far. */
  ofType(type: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type === type);
  }
}

/** Open a socket on `/v1/stt/<model>` (or any `path`) with the given headers. Resolves when open. */
export function openSocket(url: string, headers: Record<string, string> = {}, protocols?: string[]): Promise<RecordingClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    const rc = new RecordingClient(ws);
    ws.once('open', () => resolve(rc));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode, body, headers: res.headers })));
    });
    ws.once('error', reject);
  });
}

/** Open a session on a model route, send `init`, wait for `ready` (or `Metadata`). */
export async function openSession(s: TestServer, model: string, config: Record<string, unknown> = {}): Promise<RecordingClient> {
  const c = await openSocket(`${s.wsUrl}/v1/stt/${model}`, { Authorization: `Bearer ${s.key}` });
  c.sendJson({ type: 'init', config: { language: 'en', sample_rate: 16000, encoding: 'linear16', ...config } });
  await c.waitFor((m) => m.type === 'ready' || m.type === 'Metadata');
  return c;
}

/** The transcript text of every final so far in either dialect, joined by spaces. */
export function finalText(c: RecordingClient): string {
  return c.messages
    .map((m) => (m.type === 'final_transcript' ? (m.transcript as string) : m.type === 'Results' && m.is_final ? ((m.channel as { alternatives: { transcript: string }[] }).alternatives[0]!.transcript) : ''))
    .filter(Boolean)
    .join(' ');
}

/** Poll `fn` until it returns true or `timeoutMs` passes. */
export async function eventually(fn: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `ms` of digital silence as 16 kHz linear16 bytes. */
export function silence(ms: number, rate = 16000): Buffer {
  return Buffer.alloc(Math.round((rate * ms) / 1000) * 2);
}
