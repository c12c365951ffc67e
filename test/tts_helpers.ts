/**
 * Test harness for TTS WebSocket routes: a client that records every frame — JSON and binary —
 * in arrival order with a timestamp, so tests can check ordering (audio vs `cleared`) and decode
 * the audio.
 */
import WebSocket from 'ws';
import { startConfiguredServer, type TestServer } from './helpers.js';

/** One received frame. */
export type TtsFrame = { kind: 'json'; m: Record<string, unknown>; t: number } | { kind: 'bin'; data: Buffer; t: number };

/** A recording TTS WebSocket client. */
export class TtsRecorder {
  readonly frames: TtsFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeInfo: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const t = performance.now();
      this.frames.push(isBinary ? { kind: 'bin', data: Buffer.from(data), t } : { kind: 'json', m: JSON.parse(data.toString()) as Record<string, unknown>, t });
      for (const w of this.waiters) w();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters) w();
        resolve(this.closeInfo);
      }),
    );
    ws.on('error', () => {});
  }

  /** JSON messages so far. */
  get messages(): Record<string, unknown>[] {
    return this.frames.flatMap((f) => (f.kind === 'json' ? [f.m] : []));
  }

  /** Index of the first frame matching `pred`, waiting for it (rejects on close/timeout). */
  async waitIndex(pred: (f: TtsFrame) => boolean, timeoutMs = 15000, from = 0): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const i = this.frames.findIndex((f, k) => k >= from && pred(f));
      if (i >= 0) return i;
      if (this.closeInfo) throw new Error(`closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting; got ${this.describe()}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`timeout waiting; got ${this.describe()}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
      this.waiters = [];
    }
  }

  /** Wait for a JSON message of `type` (after frame index `from`); resolves with its index. */
  waitType(type: string, timeoutMs?: number, from = 0): Promise<number> {
    return this.waitIndex((f) => f.kind === 'json' && f.m.type === type, timeoutMs, from);
  }

  /** The message at `i` (must be JSON). */
  json(i: number): Record<string, unknown> {
    const f = this.frames[i]!;
    if (f.kind !== 'json') throw new Error(`frame ${i} is binary`);
    return f.m;
  }

  /** Audio bytes in frames [from, to): binary frames, or decoded `audio_chunk` messages. */
  audio(from = 0, to = this.frames.length): Buffer {
    const parts: Buffer[] = [];
    for (const f of this.frames.slice(from, to)) {
      if (f.kind === 'bin') parts.push(f.data);
      else if (f.m.type === 'audio_chunk') parts.push(Buffer.from(f.m.data as string, 'base64'));
    }
    return Buffer.concat(parts);
  }

  /** Is frame `f` audio (binary or audio_chunk)? */
  static isAudio(f: TtsFrame): boolean {
    return f.kind === 'bin' || f.m.type === 'audio_chunk';
  }

  send(v: unknown): void {
    this.ws.send(JSON.stringify(v));
  }

  /** A compact description of what was received, for assertion messages. */
  describe(): string {
    return JSON.stringify(this.frames.map((f) => (f.kind === 'bin' ? `<bin ${f.data.length}>` : f.m.type === 'audio_chunk' ? '<audio_chunk>' : f.m)).slice(0, 60));
  }
}

/** Open a TTS socket at `path` (e.g. `/v1/tts/local/flite:en`); resolves when open, rejects with the HTTP status on a refused upgrade. */
export function openTts(s: TestServer, path: string, headers: Record<string, string> = { Authorization: `Bearer ${s.key}` }, protocols?: string[]): Promise<TtsRecorder> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${s.wsUrl}${path}`, protocols, { headers });
    const rec = new TtsRecorder(ws);
    ws.once('open', () => resolve(rec));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { statusCode: res.statusCode, body, headers: res.headers })));
    });
    ws.once('error', reject);
  });
}

/** Open a unified TTS session, send `init`, wait for `ready`. */
export async function openTtsSession(s: TestServer, model = 'local/flite:en', init: Record<string, unknown> = {}): Promise<TtsRecorder> {
  const c = await openTts(s, `/v1/tts/${model}`);
  c.send({ type: 'init', ...init });
  await c.waitType('ready');
  return c;
}

/** Start a gateway like `startTestServer`, with TTS limits (and general limits) overridden. */
export async function startTtsServer(tts: Partial<import('../src/config/tts_config.js').TtsLimits> = {}, limits: Partial<import('../src/config/config.js').Limits> = {}): Promise<TestServer> {
  const { loadConfig } = await import('../src/config/config.js');
  const base = loadConfig();
  return startConfiguredServer({
    ...base,
    limits: { ...base.limits, ...limits },
    tts: { ...base.tts, limits: { ...base.tts.limits, ...tts } },
    engines: { pocketsphinx: { minIdleDecoders: 1, maxDecoders: 4 } },
  });
}
