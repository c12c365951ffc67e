/**
 * A protocol-faithful fake upstream provider that replays recorded sessions (issue 11 "Tests without
 * network"; shared/spec/upstreams.md §3 "Offline testing of relays").
 *
 * It listens on a real loopback socket (127.0.0.1, port 0) and serves each WebSocket connection (or
 * HTTP request) from a **fixture**: a JSON Lines file of `{t, dir, data, …}` records, written from the
 * provider's documented AsyncAPI/SDK examples or recorded from a real session. A fixture is data, not
 * code: a new recorded session is a new `.jsonl` file, no code change.
 *
 * ## Fixture lines (in order)
 * - `{"t":0,"dir":"meta","data":{…}}` first (optional) — what the adapter's request must look like and
 *   how the fake answers the handshake, see {@link FixtureMeta}.
 * - `{"t":ms,"dir":"in","data":PATTERN}` — the adapter must send this next. `PATTERN` is a JSON object
 *   matched as a deep subset of the adapter's JSON text frame (`"$any"` matches any present value,
 *   `"$absent"` requires the key to be missing), or `{"$audio":true}` — one or more audio frames
 *   (binary frames, or JSON frames carrying base64 audio at `meta.audio.jsonField`), or
 *   `{"$close":true}` — the adapter closes the socket, or `{"$text":"…"}` — a text frame with exactly
 *   this raw text (e.g. `""`, Soniox's end-of-audio frame; Cartesia Ink's plain `finalize`; also usable
 *   in `meta.ignore`). A JSON frame whose audio field is the empty
 *   string is a control frame (matched like text), not audio. `"capture":{"name":"dotted.path"}` on an `in`
 *   line stores values of the matched frame for `${name}` substitution in later `out` lines.
 * - `{"t":ms,"dir":"out","data":…}` — the fake sends this: an object/array → its JSON text; a string →
 *   that text; `{"$binary":"<base64>"}` → a binary frame; `{"$pcm":seconds,"rate":hz}` → a binary frame
 *   of that much 16-bit mono PCM (a tone). Inside JSON, the string `"$pcm_b64:<seconds>@<hz>"` becomes
 *   base64 PCM and `"${name}"` a captured value (whole string) — `"…${name}…"` substitutes inline.
 * - `{"t":ms,"dir":"close","data":{"code":1000,"reason":""}}` — the fake closes (code 1006 → the TCP
 *   socket is destroyed without a close frame, as a crashed provider would).
 * - Any line may carry `"audio_s":seconds`: it waits until the adapter has sent that much audio in
 *   total (from `meta.audio`), which is how STT results follow the audio like a real provider's.
 *
 * `t` is milliseconds since the connection opened, as recorded. Replay sends each `out` line once every
 * earlier `in` line is satisfied, after `(t − t of the previous line) × timeScale` ms (default
 * `timeScale` 0: as fast as the gating allows, for deterministic tests).
 *
 * HTTP fixtures (`meta.kind = "http"`): the request is checked like a handshake (method, path, query,
 * headers, `meta.body` as a deep-subset pattern of the JSON body); `out` lines are the response:
 * first `{"$http":{"status":200,"headers":{…}}}`, then body chunks (text, JSON, `$binary`, `$pcm`).
 *
 * Everything the adapter did wrong is collected in {@link FakeSession.violations} (never thrown), so a
 * test asserts `fake.violations()` is empty and sees every mistake at once.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';

/** One record of a fixture file. Times in ms since the connection opened. */
export interface FixtureLine {
  t: number;
  dir: 'meta' | 'in' | 'out' | 'close';
  data?: unknown;
  /** Wait until the adapter has sent this many seconds of audio in total. */
  audio_s?: number;
  /** `in` lines: `{var: "dotted.path"}` values of the matched frame to keep for `${var}`. */
  capture?: Record<string, string>;
}

/** The `meta` record: the expected request and the handshake answer. */
export interface FixtureMeta {
  /** `ws` (default) or `http`. */
  kind?: 'ws' | 'http';
  /** Expected request method (http; default POST). */
  method?: string;
  /** Expected path: exact, or a RegExp source when it starts with `^`. */
  path?: string;
  /** Expected query values: exact string, `"$present"` or `"$absent"`. Unlisted keys are free. */
  query?: Record<string, string>;
  /** Expected request headers (lower-case names): exact string, `"$present"` or `"$absent"`. */
  headers?: Record<string, string>;
  /** Expected JSON body (http): deep-subset pattern. */
  body?: unknown;
  /** Handshake answer: 101 (default) accepts; any other status refuses with `refuseBody`. */
  status?: number;
  /** Body of a refused handshake (string or JSON). */
  refuseBody?: unknown;
  /** Subprotocol the server selects, if any. */
  subprotocol?: string;
  /** Adapter text frames allowed anywhere (keepalives…): deep-subset patterns. */
  ignore?: unknown[];
  /** How to count audio: raw bytes per second, and for JSON-framed audio the dotted path of the base64 field. */
  audio?: { bytesPerSecond?: number; jsonField?: string };
}

/** A parsed fixture: meta plus the lines after it. */
export interface Fixture {
  name: string;
  meta: FixtureMeta;
  lines: FixtureLine[];
}

/** What one connection (or HTTP request) did, for assertions. */
export interface FakeSession {
  fixture: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** Adapter text frames, parsed when JSON (audio-carrying JSON frames are not kept, only counted). */
  textIn: unknown[];
  /** Audio frames and bytes (decoded bytes for base64 JSON audio). */
  audioFrames: number;
  audioBytes: number;
  /** Seconds of audio received, from `meta.audio.bytesPerSecond` (default 32000: 16 kHz linear16). */
  audioSeconds: number;
  /** Every deviation from the fixture (wrong URL, unexpected frame, bad JSON…). */
  violations: string[];
  /** `in` lines not yet satisfied when the connection ended (or now). */
  unmet: string[];
  /** Close code the adapter sent, when it closed. */
  clientCloseCode?: number;
  /** True once the connection ended. */
  ended: boolean;
  /** HTTP request body (http fixtures). */
  body?: string;
}

/** Read a `.jsonl` fixture file. @throws on a malformed line (fixtures are test data: fail loudly). */
export function loadFixture(file: string): Fixture {
  const lines: FixtureLine[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((l, i) => {
      const s = l.trim();
      if (!s || s.startsWith('//')) return;
      try {
        lines.push(JSON.parse(s) as FixtureLine);
      } catch (e) {
        throw new Error(`${file}:${i + 1}: ${(e as Error).message}`);
      }
    });
  const meta = lines[0]?.dir === 'meta' ? ((lines.shift()!.data ?? {}) as FixtureMeta) : {};
  return { name: file.replace(/^.*\//, ''), meta, lines };
}

/** Value at a dotted path (`a.b.0.c`), or undefined. */
export function atPath(v: unknown, dotted: string): unknown {
  let cur: unknown = v;
  for (const k of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/**
 * Deep-subset match: every key of `pattern` is in `value` with a matching value; arrays match
 * element-wise by position (same length); `"$any"` matches anything present; `"$absent"` a missing key.
 * @returns null on a match, else a short reason.
 */
export function subsetMismatch(pattern: unknown, value: unknown, where = '$'): string | null {
  if (pattern === '$any') return value === undefined ? `${where} missing` : null;
  if (Array.isArray(pattern)) {
    if (!Array.isArray(value) || value.length !== pattern.length) return `${where}: expected array[${pattern.length}]`;
    for (let i = 0; i < pattern.length; i++) {
      const r = subsetMismatch(pattern[i], value[i], `${where}[${i}]`);
      if (r) return r;
    }
    return null;
  }
  if (pattern !== null && typeof pattern === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return `${where}: expected object`;
    for (const [k, p] of Object.entries(pattern)) {
      const v = (value as Record<string, unknown>)[k];
      if (p === '$absent') {
        if (v !== undefined) return `${where}.${k}: expected absent`;
        continue;
      }
      const r = subsetMismatch(p, v, `${where}.${k}`);
      if (r) return r;
    }
    return null;
  }
  return Object.is(pattern, value) ? null : `${where}: expected ${JSON.stringify(pattern)}, got ${JSON.stringify(value)}`;
}

/** `seconds` of a 440 Hz tone as 16-bit little-endian mono PCM at `rate` Hz. */
export function tonePcm(seconds: number, rate: number): Buffer {
  const n = Math.round(seconds * rate);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  return b;
}

function substitute(v: unknown, vars: Record<string, unknown>): unknown {
  if (typeof v === 'string') {
    const pcm = /^\$pcm_b64:([\d.]+)@(\d+)$/.exec(v);
    if (pcm) return tonePcm(Number(pcm[1]), Number(pcm[2])).toString('base64');
    const whole = /^\$\{(\w+)\}$/.exec(v);
    if (whole) return vars[whole[1]];
    return v.replace(/\$\{(\w+)\}/g, (_m, n: string) => String(vars[n] ?? ''));
  }
  if (Array.isArray(v)) return v.map((x) => substitute(x, vars));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, vars)]));
  return v;
}

/** Options of {@link ReplayFake}. */
export interface ReplayFakeOptions {
  /**
   * Fixtures served in connection order; the last one serves every later connection. Or a chooser
   * from the request (path + query) for fakes whose connections differ by URL.
   */
  fixtures: Fixture[] | ((req: { path: string; query: Record<string, string> }) => Fixture);
  /** Multiplier of the recorded gaps between lines (0 = no waiting, 1 = real time). Default 0. */
  timeScale?: number;
  /**
   * Called just before each `out` line is sent on a WebSocket, with `performance.now()` then (the
   * provider benchmark, bench/providers.ts, measures from it; same process = same clock).
   */
  onSend?: (ev: { session: FakeSession; line: FixtureLine; at: number }) => void;
}

function checkExpectations(meta: FixtureMeta, s: FakeSession): void {
  const v = s.violations;
  if (meta.path !== undefined) {
    const ok = meta.path.startsWith('^') ? new RegExp(meta.path).test(s.path) : meta.path === s.path;
    if (!ok) v.push(`path: expected ${meta.path}, got ${s.path}`);
  }
  const check = (kind: string, want: Record<string, string> | undefined, got: (k: string) => string | undefined): void => {
    for (const [k, w] of Object.entries(want ?? {})) {
      const g = got(k);
      if (w === '$present') {
        if (g === undefined) v.push(`${kind} ${k}: missing`);
      } else if (w === '$absent') {
        if (g !== undefined) v.push(`${kind} ${k}: expected absent, got ${k === 'authorization' || /key|token/i.test(k) ? '<redacted>' : g}`);
      } else if (g !== w) v.push(`${kind} ${k}: expected ${w}, got ${g}`);
    }
  };
  check('query', meta.query, (k) => s.query[k]);
  check('header', meta.headers, (k) => {
    const h = s.headers[k.toLowerCase()];
    return Array.isArray(h) ? h.join(',') : h;
  });
}

/** The fake provider server. Start with {@link ReplayFake.start}; always {@link ReplayFake.close} it. */
export class ReplayFake {
  /** Every connection/request served so far, in order. */
  readonly sessions: FakeSession[] = [];
  private server?: http.Server;
  private wss?: WebSocketServer;
  private readonly sockets = new Set<Socket>();
  private readonly live = new Set<WebSocket>();
  private served = 0;
  /** Test switch: refuse every new handshake with this HTTP status (e.g. 503), or accept (null). */
  refuseStatus: number | null = null;

  constructor(private opts: ReplayFakeOptions) {}

  /** Replace the fixtures for connections from now on. */
  setFixtures(f: ReplayFakeOptions['fixtures']): void {
    this.opts = { ...this.opts, fixtures: f };
  }

  /** Listen on 127.0.0.1:0. @returns base URLs (`ws://127.0.0.1:P`, `http://127.0.0.1:P`). */
  async start(): Promise<{ ws: string; http: string; port: number }> {
    this.wss = new WebSocketServer({
      noServer: true,
      handleProtocols: (protocols) => {
        const want = this.currentMeta?.subprotocol;
        return want && protocols.has(want) ? want : false;
      },
    });
    this.server = http.createServer((req, res) => this.onHttp(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const port = (this.server.address() as AddressInfo).port;
    return { ws: `ws://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}`, port };
  }

  /** Every violation of every session, prefixed with its index and fixture name. */
  violations(): string[] {
    return this.sessions.flatMap((s, i) => s.violations.map((v) => `#${i} ${s.fixture}: ${v}`));
  }

  /** Destroy every live connection without a close frame (a crashed provider). */
  killAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Stop listening and drop every connection. */
  async close(): Promise<void> {
    this.killAll();
    for (const ws of this.live) ws.terminate();
    this.wss?.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private currentMeta?: FixtureMeta;

  private pick(path: string, query: Record<string, string>): Fixture {
    const f = this.opts.fixtures;
    if (typeof f === 'function') return f({ path, query });
    const fx = f[Math.min(this.served, f.length - 1)];
    this.served++;
    return fx;
  }

  private newSession(req: IncomingMessage, fx: Fixture): FakeSession {
    const url = new URL(req.url ?? '/', 'http://x');
    const s: FakeSession = {
      fixture: fx.name,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      textIn: [],
      audioFrames: 0,
      audioBytes: 0,
      audioSeconds: 0,
      violations: [],
      unmet: [],
      ended: false,
    };
    this.sessions.push(s);
    checkExpectations(fx.meta, s);
    return s;
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const fx = this.pick(url.pathname, Object.fromEntries(url.searchParams));
    const s = this.newSession(req, fx);
    const status = this.refuseStatus ?? fx.meta.status ?? 101;
    if (status !== 101) {
      const body = typeof fx.meta.refuseBody === 'string' ? fx.meta.refuseBody : JSON.stringify(fx.meta.refuseBody ?? { error: http.STATUS_CODES[status] });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      s.ended = true;
      return;
    }
    this.currentMeta = fx.meta;
    this.wss!.handleUpgrade(req, socket, head, (ws) => {
      this.live.add(ws);
      new WsReplay(ws, socket, fx, s, this.opts.timeScale ?? 0, this.opts.onSend).run();
      ws.on('close', () => this.live.delete(ws));
    });
  }

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const fx = this.pick(url.pathname, Object.fromEntries(url.searchParams));
    const s = this.newSession(req, fx);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      s.body = Buffer.concat(chunks).toString('utf8');
      const m = fx.meta;
      if ((m.method ?? 'POST').toUpperCase() !== req.method) s.violations.push(`method: expected ${m.method ?? 'POST'}, got ${req.method}`);
      if (m.body !== undefined) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(s.body);
        } catch {
          s.violations.push('body: not JSON');
        }
        if (parsed !== undefined) {
          const r = subsetMismatch(m.body, parsed);
          if (r) s.violations.push(`body ${r}`);
        }
      }
      void this.replayHttp(fx, res, s);
    });
  }

  private async replayHttp(fx: Fixture, res: ServerResponse, s: FakeSession): Promise<void> {
    const scale = this.opts.timeScale ?? 0;
    let prevT = 0;
    let headSent = false;
    try {
      for (const l of fx.lines) {
        if (l.dir !== 'out') continue;
        if (scale > 0 && l.t > prevT) await new Promise((r) => setTimeout(r, (l.t - prevT) * scale));
        prevT = l.t;
        const d = l.data as Record<string, unknown>;
        if (d && typeof d === 'object' && '$http' in d) {
          const h = d.$http as { status?: number; headers?: Record<string, string> };
          res.writeHead(h.status ?? 200, h.headers ?? {});
          headSent = true;
          continue;
        }
        if (!headSent) {
          res.writeHead(200);
          headSent = true;
        }
        res.write(outPayload(l.data, {}).data);
      }
    } finally {
      if (!headSent) res.writeHead(200);
      res.end();
      s.ended = true;
    }
  }
}

function outPayload(data: unknown, vars: Record<string, unknown>): { data: string | Buffer; binary: boolean } {
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const d = data as Record<string, unknown>;
    if (typeof d.$binary === 'string') return { data: Buffer.from(d.$binary, 'base64'), binary: true };
    if (typeof d.$pcm === 'number') return { data: tonePcm(d.$pcm, Number(d.rate ?? 16000)), binary: true };
  }
  if (typeof data === 'string') return { data: substitute(data, vars) as string, binary: false };
  return { data: JSON.stringify(substitute(data, vars)), binary: false };
}

/** Drives one WebSocket connection through its fixture. */
class WsReplay {
  private i = 0;
  private prevT = 0;
  private sending = false;
  private readonly vars: Record<string, unknown> = {};
  private audioSinceLine = 0;
  private clientClosed = false;
  /** Indices of `in` lines matched by a frame that arrived before the cursor reached them. */
  private readonly preSatisfied = new Set<number>();

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Socket,
    private readonly fx: Fixture,
    private readonly s: FakeSession,
    private readonly timeScale: number,
    private readonly onSend?: ReplayFakeOptions['onSend'],
  ) {}

  run(): void {
    this.ws.on('message', (d: RawData, isBinary: boolean) => this.onFrame(d, isBinary));
    this.ws.on('close', (code) => {
      this.clientClosed = true;
      this.s.clientCloseCode ??= code;
      this.s.ended = true;
      const cur = this.fx.lines[this.i];
      if (cur?.dir === 'in' && (cur.data as { $close?: boolean })?.$close) this.i++;
      this.s.unmet = this.fx.lines
        .map((l, k) => ({ l, k }))
        .filter(({ l, k }) => k >= this.i && l.dir === 'in' && !this.preSatisfied.has(k))
        .map(({ l }) => JSON.stringify(l.data));
    });
    this.ws.on('error', () => undefined);
    void this.advance();
  }

  private get bytesPerSecond(): number {
    return this.fx.meta.audio?.bytesPerSecond ?? 32000;
  }

  private onFrame(d: RawData, isBinary: boolean): void {
    const buf = Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d as ArrayBuffer);
    if (isBinary) return this.onAudio(buf.length);
    const text = buf.toString('utf8');
    // `{"$text":"…"}` in an `in` line matches a text frame by its exact raw text (e.g. Soniox's empty end-of-audio frame).
    const rawAt = this.nextIn();
    const raw = rawAt >= 0 ? (this.fx.lines[rawAt]!.data as { $text?: unknown } | undefined) : undefined;
    if (raw && typeof raw.$text === 'string' && raw.$text === text) {
      this.s.textIn.push(text);
      this.preSatisfied.add(rawAt);
      void this.advance();
      return;
    }
    let json: unknown;
    let plain = false;
    try {
      json = JSON.parse(text);
    } catch {
      // A plain-text control frame (Cartesia Ink's `finalize`/`close`): matched as `{"$text":"…"}`.
      json = { $text: text };
      plain = true;
    }
    const field = this.fx.meta.audio?.jsonField;
    const b64 = field ? atPath(json, field) : undefined;
    // An empty audio field is a control frame, not audio (ElevenLabs Scribe `commit`/keepalive chunks carry
    // `audio_base_64: ""`, Sarvam's end_of_stream `audio.data: ""`), so it is matched like any text frame.
    if (typeof b64 === 'string' && b64.length > 0) return this.onAudio(Buffer.from(b64, 'base64').length);
    this.s.textIn.push(json);
    const j = this.nextIn();
    const next = j >= 0 ? this.fx.lines[j] : undefined;
    const pattern = next ? (next.data as Record<string, unknown> | undefined) : undefined;
    if (pattern && !pattern.$audio && !pattern.$close && pattern.$text === undefined && !subsetMismatch(pattern, json)) {
      for (const [name, p] of Object.entries(next!.capture ?? {})) this.vars[name] = atPath(json, p);
      this.preSatisfied.add(j);
      void this.advance();
      return;
    }
    if ((this.fx.meta.ignore ?? []).some((p) => !subsetMismatch(p, json))) return;
    if (plain && !(pattern && '$text' in pattern)) {
      this.s.violations.push(`text frame is not JSON: ${text.slice(0, 80)}`);
      return;
    }
    if (!next) {
      this.s.violations.push(`unexpected frame after the fixture's last expected message: ${text.slice(0, 120)}`);
      return;
    }
    const why = pattern?.$audio ? 'audio' : pattern?.$close ? 'close' : pattern?.$text !== undefined ? 'exact text' : (subsetMismatch(pattern, json) ?? '?');
    this.s.violations.push(`line ${j + 1}: expected ${JSON.stringify(next.data).slice(0, 120)} (${why}), got ${text.slice(0, 120)}`);
  }

  /**
   * Index of the next `in` line at or after the cursor not yet satisfied (outs still to be sent may
   * sit before it: an adapter may legitimately send its next message before the fake has answered), or -1.
   */
  private nextIn(): number {
    let j = this.i;
    while (j < this.fx.lines.length && this.fx.lines[j].dir !== 'in') j++;
    while (j < this.fx.lines.length && this.preSatisfied.has(j)) {
      j++;
      while (j < this.fx.lines.length && this.fx.lines[j].dir !== 'in') j++;
    }
    return j < this.fx.lines.length ? j : -1;
  }

  private onAudio(bytes: number): void {
    this.s.audioFrames++;
    this.s.audioBytes += bytes;
    this.s.audioSeconds = this.s.audioBytes / this.bytesPerSecond;
    this.audioSinceLine++;
    void this.advance();
  }

  /** Move through the fixture as far as the received frames and audio allow. */
  private async advance(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.i < this.fx.lines.length && !this.clientClosed) {
        const l = this.fx.lines[this.i];
        if (l.audio_s !== undefined && this.s.audioSeconds + 1e-9 < l.audio_s) return;
        if (l.dir === 'in') {
          const p = l.data as Record<string, unknown> | undefined;
          if (this.preSatisfied.has(this.i)) {
            this.i++;
            continue;
          }
          if (!p?.$audio || this.audioSinceLine === 0) return; // wait for a matching frame / the close / audio
          this.audioSinceLine = 0;
          this.i++;
          continue;
        }
        const delay = this.timeScale > 0 ? Math.max(0, l.t - this.prevT) * this.timeScale : 0;
        this.prevT = l.t;
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (this.clientClosed) return;
        if (l.dir === 'out') {
          const { data, binary } = outPayload(l.data, this.vars);
          this.onSend?.({ session: this.s, line: l, at: performance.now() });
          this.ws.send(data, { binary });
          this.i++;
          continue;
        }
        if (l.dir === 'close') {
          const c = (l.data ?? {}) as { code?: number; reason?: string };
          this.i++;
          if (c.code === 1006) this.socket.destroy();
          else this.ws.close(c.code ?? 1000, c.reason ?? '');
          return;
        }
        this.i++;
      }
    } finally {
      this.sending = false;
    }
  }
}
