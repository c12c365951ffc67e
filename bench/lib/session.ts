/**
 * A benchmark STT session over a raw `ws` socket (SLNG unified dialect): every server frame is
 * recorded with its arrival time, audio is sent either at real-time pace (microphone emulation)
 * or as fast as the socket drains. All waits are bounded.
 *
 * Times are `performance.now()` milliseconds throughout.
 */
import WebSocket from 'ws';
import { SAMPLE_RATE } from './clips.js';

/** A server frame (parsed JSON) and its arrival time. */
export interface Received {
  /** Arrival, `performance.now()` ms. */
  atMs: number;
  msg: ServerMsg;
}

/** A word with times in seconds from stream start. */
export interface Word {
  word: string;
  start: number;
  end: number;
  confidence: number;
}

/** The unified-dialect server frames the benchmark looks at (other fields ignored). */
export type ServerMsg =
  | { type: 'ready'; session_id: string }
  | { type: 'partial_transcript'; transcript: string }
  | {
      type: 'final_transcript';
      transcript: string;
      /** Seconds from stream start. */
      start: number;
      /** Seconds. */
      duration: number;
      speech_final: boolean;
      from_finalize: boolean;
      words?: Word[];
    }
  | { type: 'error'; code: string; message: string }
  | { type: string; [k: string]: unknown };

/** A final transcript frame. */
export type FinalMsg = Extract<ServerMsg, { type: 'final_transcript' }>;

/** Options of {@link BenchSession.open}. */
export interface OpenOptions {
  /** `ws://127.0.0.1:PORT`. */
  wsUrl: string;
  /** Catalogue code, e.g. `local/pocketsphinx:en`. */
  model: string;
  key: string;
  /** `init.config`. */
  init: Record<string, unknown>;
  /** Bound on connect + `ready`, ms. Default 15000. */
  timeoutMs?: number;
}

/** How the socket ended. `code` −1 means we gave up waiting (timeout) and terminated it. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** `performance.now()` ms. */
  atMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One streaming session. Create with {@link BenchSession.open}. */
export class BenchSession {
  readonly received: Received[] = [];
  closeInfo: CloseInfo | null = null;
  /** Transport errors seen (messages). */
  readonly transportErrors: string[] = [];
  private readonly closeWaiters: ((c: CloseInfo) => void)[] = [];
  private waiters: { pred: (r: Received) => boolean; resolve: (r: Received | null) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const atMs = performance.now();
      if (isBinary) return;
      let msg: ServerMsg;
      try {
        msg = JSON.parse(data.toString()) as ServerMsg;
      } catch {
        msg = { type: '__unparseable', text: data.toString().slice(0, 200) };
      }
      const r = { atMs, msg };
      this.received.push(r);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(r)) return true;
        w.resolve(r);
        return false;
      });
    });
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString(), atMs: performance.now() };
      for (const w of this.waiters) w.resolve(null);
      this.waiters = [];
      for (const w of this.closeWaiters.splice(0)) w(this.closeInfo);
    });
    ws.on('error', (err) => this.transportErrors.push(err.message));
  }

  /**
   * Connect, send `init`, wait for `ready`.
   * @throws Error on a refused upgrade, an `error` frame or close before `ready`, or the timeout.
   */
  static async open(o: OpenOptions): Promise<BenchSession> {
    const timeoutMs = o.timeoutMs ?? 15000;
    const ws = new WebSocket(`${o.wsUrl}/v1/stt/${o.model}`, { headers: { Authorization: `Bearer ${o.key}` }, handshakeTimeout: timeoutMs });
    const s = new BenchSession(ws);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ready within ${timeoutMs} ms`)), timeoutMs);
        ws.once('unexpected-response', (_req, res) => {
          clearTimeout(t);
          reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
        });
        ws.once('error', (e) => {
          clearTimeout(t);
          reject(e);
        });
        ws.once('open', () => ws.send(JSON.stringify({ type: 'init', config: o.init })));
        void s.waitFor((r) => r.msg.type === 'ready' || r.msg.type === 'error', timeoutMs).then((r) => {
          clearTimeout(t);
          if (r?.msg.type === 'ready') resolve();
          else if (r) reject(new Error(`init rejected: ${JSON.stringify(r.msg)}`));
          else reject(new Error(`closed before ready (${s.closeInfo?.code} ${s.closeInfo?.reason})`));
        });
      });
    } catch (err) {
      ws.terminate();
      throw err;
    }
    return s;
  }

  /** Whether the socket is open for sending. */
  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a JSON control message; returns the send time (ms), or null when the socket is not open. */
  sendJson(v: unknown): number | null {
    if (!this.open) return null;
    this.ws.send(JSON.stringify(v));
    return performance.now();
  }

  /** First received frame (already received or future) matching `pred`; `null` on timeout or close. */
  waitFor(pred: (r: Received) => boolean, timeoutMs: number): Promise<Received | null> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    if (this.closeInfo) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w = {
        pred,
        resolve: (r: Received | null) => {
          clearTimeout(t);
          resolve(r);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(null);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Resolve when the socket closes, or after `timeoutMs` with `null`. */
  waitClosed(timeoutMs: number): Promise<CloseInfo | null> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), timeoutMs);
      this.closeWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  /**
   * Send `{"type":"close"}` and wait for the server to close (normally 1000 after the last finals).
   * On timeout the socket is terminated and `{code: -1}` returned.
   */
  async closeAndWait(timeoutMs = 30000): Promise<CloseInfo> {
    this.sendJson({ type: 'close' });
    const c = await this.waitClosed(timeoutMs);
    if (c) return c;
    this.ws.terminate();
    this.closeInfo = { code: -1, reason: `no close within ${timeoutMs} ms`, atMs: performance.now() };
    return this.closeInfo;
  }

  /** Drop the connection without a close handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  /** Final transcript frames with their arrival times. */
  finals(): { atMs: number; msg: FinalMsg }[] {
    return this.received.filter((r) => r.msg.type === 'final_transcript') as { atMs: number; msg: FinalMsg }[];
  }

  /** `error` frames received. */
  errors(): { code: string; message: string }[] {
    return this.received.filter((r) => r.msg.type === 'error').map((r) => r.msg as { code: string; message: string });
  }

  /** Non-empty final transcripts joined by single spaces. */
  text(): string {
    return this.finals()
      .map((f) => f.msg.transcript.trim())
      .filter(Boolean)
      .join(' ');
  }

  /**
   * Send `bytes` as a microphone would: 20 ms chunks (`chunkMs`), chunk k sent when its last sample is
   * due, i.e. at `t0 + (k+1)·chunkMs`, scheduled against absolute time (no drift; chunks that are
   * overdue after a stall are sent at once). Stops early if the socket closes.
   * @returns `t0` (when sample 0 is "spoken", ms) and how late chunks went out (ms).
   */
  async streamRealtime(bytes: Buffer, opts: { chunkMs?: number; t0?: number } = {}): Promise<RealtimeResult> {
    const chunkMs = opts.chunkMs ?? 20;
    const chunkBytes = Math.round((SAMPLE_RATE * chunkMs) / 1000) * 2;
    const t0 = opts.t0 ?? performance.now();
    let lateMax = 0;
    let lateSum = 0;
    let n = 0;
    for (let k = 0, o = 0; o < bytes.length; k++, o += chunkBytes) {
      const due = t0 + (k + 1) * chunkMs;
      for (let now = performance.now(); now < due; now = performance.now()) await sleep(Math.max(1, Math.ceil(due - now)));
      if (!this.open) break;
      this.ws.send(bytes.subarray(o, o + chunkBytes));
      const late = performance.now() - due;
      lateMax = Math.max(lateMax, late);
      lateSum += late;
      n++;
    }
    return { t0, endMs: performance.now(), chunks: n, lateMaxMs: lateMax, lateMeanMs: n ? lateSum / n : 0 };
  }

  /**
   * Send `bytes` as fast as the socket drains: `chunkBytes` frames (default 3200 = 100 ms), pausing
   * while more than 256 KiB are buffered. Bounded by `timeoutMs` (default 60000).
   */
  async streamFast(bytes: Buffer, chunkBytes = 3200, timeoutMs = 60000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (let o = 0; o < bytes.length; o += chunkBytes) {
      if (!this.open) return;
      this.ws.send(bytes.subarray(o, o + chunkBytes));
      while (this.ws.bufferedAmount > 256 * 1024) {
        if (performance.now() > deadline) throw new Error('socket did not drain in time');
        await sleep(1);
      }
    }
  }
}

/** Result of {@link BenchSession.streamRealtime}; all ms. */
export interface RealtimeResult {
  /** Wall time of sample 0, `performance.now()` ms. */
  t0: number;
  /** When the last chunk was sent, ms. */
  endMs: number;
  chunks: number;
  /** Largest delay of a chunk past its due time, ms. */
  lateMaxMs: number;
  lateMeanMs: number;
}
