/**
 * A loopback upstream speaking the SLNG unified STT protocol (shared/spec/protocols.md §1.3) that
 * emits scripted results at known points of the audio it receives — the "loopback fake server" of
 * shared/spec/upstreams.md §3, used by the relay benchmark (bench/relay.ts).
 *
 * Per connection (`/v1/stt/<model>`, any auth): the first frame must be `init` (else close 1008);
 * it answers `ready`. Then, counting received linear16 audio (bytes / (2 · sample_rate / 1000) ms):
 * every `partialEveryMs` of audio → `partial_transcript`, every `finalEveryMs` → `final_transcript`
 * (with `words`, `start`, `duration` in seconds of this connection's audio). `finalize` → a
 * `from_finalize` final at once; `close` → a last final, then close 1000; `keepalive` is ignored.
 *
 * Every result's transcript is `relay <name> <conn> <seq> <stampUs>`: the upstream's name, the
 * connection number, the result number on that connection, and the send time as integer
 * microseconds of `performance.now()` taken just before `ws.send` — so a client in the SAME process
 * computes the added latency as `performance.now()·1000 − stampUs` on one clock ({@link parseStamp}).
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';

/** Options of {@link ScriptedUpstream.start}. */
export interface ScriptedUpstreamOptions {
  /** Short name stamped in every transcript (letters/digits only), e.g. `a`. */
  name: string;
  /** Audio between two results, ms of audio (default 250). */
  partialEveryMs?: number;
  /** Audio between two finals, ms of audio (default 1000); a multiple of `partialEveryMs`. */
  finalEveryMs?: number;
}

/** What {@link parseStamp} reads back from a transcript. */
export interface Stamp {
  upstream: string;
  conn: number;
  seq: number;
  /** Send time, µs of `performance.now()`. */
  sentUs: number;
}

const STAMP_RE = /relay ([a-z0-9]+) (\d+) (\d+) (\d+)/i;

/** Read the stamp of a scripted transcript; null when there is none (e.g. an empty final). */
export function parseStamp(transcript: string): Stamp | null {
  const m = STAMP_RE.exec(transcript);
  if (!m) return null;
  return { upstream: m[1]!.toLowerCase(), conn: Number(m[2]), seq: Number(m[3]), sentUs: Number(m[4]) };
}

/** When one connection reached each step, ms of `performance.now()` (this process's clock). */
export interface ConnTimes {
  /** Connection number (as stamped in transcripts). */
  id: number;
  acceptedAt: number;
  /** `ready` sent. */
  readyAt: number | null;
  /** First audio frame received. */
  firstAudioAt: number | null;
}

/** One upstream connection's state. */
interface Conn {
  ws: WebSocket;
  id: number;
  ready: boolean;
  bytesPerMs: number;
  audioBytes: number;
  /** Audio ms at which the next result is due. */
  nextAt: number;
  /** Audio ms of the last final's end. */
  lastFinalMs: number;
  seq: number;
  times: ConnTimes;
}

/** A scripted unified-protocol upstream on 127.0.0.1:0. */
export class ScriptedUpstream {
  /** Connections accepted since start. */
  accepted = 0;
  /** Results sent since start. */
  sent = 0;
  /** Audio bytes received since start. */
  audioBytes = 0;
  /** Step times of every connection since start, in accept order. */
  readonly connections: ConnTimes[] = [];
  private readonly conns = new Set<Conn>();
  private readonly partialEveryMs: number;
  private readonly finalEveryMs: number;

  private constructor(
    private readonly wss: WebSocketServer,
    readonly name: string,
    o: ScriptedUpstreamOptions,
  ) {
    this.partialEveryMs = o.partialEveryMs ?? 250;
    this.finalEveryMs = o.finalEveryMs ?? 1000;
    wss.on('connection', (ws) => this.onConnection(ws));
  }

  /** Start listening. @throws Error when the name is not alphanumeric or listen fails. */
  static async start(o: ScriptedUpstreamOptions): Promise<ScriptedUpstream> {
    if (!/^[a-z0-9]+$/i.test(o.name)) throw new Error(`upstream name must be alphanumeric: ${o.name}`);
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, backlog: 2048 });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new ScriptedUpstream(wss, o.name, o);
  }

  /** The listening port. */
  get port(): number {
    return (this.wss.address() as AddressInfo).port;
  }
  /** `ws://127.0.0.1:PORT`. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }
  /** Open connections. */
  get live(): number {
    return this.conns.size;
  }

  /** Destroy every open connection abruptly (no close frame: a killed backend). Returns how many. */
  killAll(): number {
    const n = this.conns.size;
    for (const c of [...this.conns]) c.ws.terminate();
    return n;
  }

  /** Close everything and stop listening. */
  async close(): Promise<void> {
    this.killAll();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private onConnection(ws: WebSocket): void {
    this.accepted++;
    const times: ConnTimes = { id: this.accepted, acceptedAt: performance.now(), readyAt: null, firstAudioAt: null };
    this.connections.push(times);
    const c: Conn = { ws, id: this.accepted, ready: false, bytesPerMs: 32, audioBytes: 0, nextAt: this.partialEveryMs, lastFinalMs: 0, seq: 0, times };
    this.conns.add(c);
    ws.on('error', () => {});
    ws.on('close', () => this.conns.delete(c));
    ws.on('message', (data, isBinary) => {
      if (!c.ready) {
        if (isBinary) return ws.close(1008, 'audio before init');
        let m: { type?: string; config?: { sample_rate?: number } };
        try {
          m = JSON.parse(data.toString()) as typeof m;
        } catch {
          return ws.close(1008, 'bad init');
        }
        if (m.type !== 'init') return ws.close(1008, 'init must come first');
        const rate = m.config?.sample_rate ?? 16000;
        c.bytesPerMs = (rate * 2) / 1000;
        c.ready = true;
        ws.send(JSON.stringify({ type: 'ready', session_id: `${this.name}-${c.id}` }));
        times.readyAt = performance.now();
        return;
      }
      if (isBinary) {
        const len = (data as Buffer).length;
        times.firstAudioAt ??= performance.now();
        c.audioBytes += len;
        this.audioBytes += len;
        const ms = c.audioBytes / c.bytesPerMs;
        while (ms >= c.nextAt) {
          const at = c.nextAt;
          c.nextAt += this.partialEveryMs;
          if (at - c.lastFinalMs >= this.finalEveryMs) this.result(c, 'final', at, false);
          else this.result(c, 'partial', at, false);
        }
        return;
      }
      let type: string | undefined;
      try {
        type = (JSON.parse(data.toString()) as { type?: string }).type;
      } catch {
        return;
      }
      if (type === 'finalize') this.result(c, 'final', c.audioBytes / c.bytesPerMs, true);
      else if (type === 'close') {
        this.result(c, 'final', c.audioBytes / c.bytesPerMs, false);
        ws.close(1000);
      }
    });
  }

  /** Send one scripted result covering audio [lastFinalMs, atMs]. */
  private result(c: Conn, kind: 'partial' | 'final', atMs: number, fromFinalize: boolean): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    c.seq++;
    const startS = c.lastFinalMs / 1000;
    const endS = Math.max(atMs, c.lastFinalMs) / 1000;
    const stampUs = Math.round(performance.now() * 1000);
    const tokens = ['relay', this.name, String(c.id), String(c.seq), String(stampUs)];
    const transcript = tokens.join(' ');
    let frame: Record<string, unknown>;
    if (kind === 'partial') {
      frame = { type: 'partial_transcript', transcript, confidence: 0.9, start: startS, duration: endS - startS };
    } else {
      const step = (endS - startS) / tokens.length;
      const words = tokens.map((w, i) => ({ word: w, start: startS + i * step, end: startS + (i + 1) * step, confidence: 0.9 }));
      frame = { type: 'final_transcript', transcript, confidence: 0.9, language: 'en', start: startS, duration: endS - startS, words, speech_final: !fromFinalize, ...(fromFinalize ? { from_finalize: true } : {}) };
      c.lastFinalMs = Math.max(atMs, c.lastFinalMs);
    }
    c.ws.send(JSON.stringify(frame));
    this.sent++;
  }
}
