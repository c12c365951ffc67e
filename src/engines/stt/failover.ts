/**
 * STT failover across backends (issue 10 part 2 "Failover" and "Seamless mid-stream STT failover";
 * design: shared/spec/upstreams.md §2.2 "STT mid-stream = bounded replay"). An {@link SttEngine} over
 * an ordered list of backends (engine instances with their region), chosen per request by the front
 * door — already filtered by the client's region/world-part pins, so failover never crosses a pin.
 *
 * Connect: `start()` tries the backends in order, skipping those cooling down after a failure or
 * whose single probe trial is in flight ({@link BackendHealth.begin}); a retryable failure (refused,
 * timed out, 5xx) moves to the next one; a non-retryable one (the backend's auth/config refusal) goes
 * to the client unchanged. A `rate_limit` (backend busy) also moves on but starts no cool-down. When
 * none is left the start rejects with `backend_connection_failed` and `Failed to connect to backend:
 * <reason>` (seed 001 shape, protocols.md §1.4) — or with `rate_limit` (HTTP 429 / close 1013: retry
 * later) when the last backend tried was busy.
 *
 * Mid-stream: the returned {@link FailoverSttStream} keeps the audio written since the last emitted
 * final (bounded by `replaySeconds`). When the live backend's stream fails with a retryable error
 * (abnormal close, stall watchdog, `provider_error` with `retryable`), it opens a stream on the next
 * candidate, replays that audio within the candidate's pace limit, then continues live. Times from the
 * new backend are rebased by the replay start; words an earlier final already carried are dropped.
 * The client sees no error and loses no words (limits: docs/architecture.md "Failover").
 */
import { EventEmitter } from 'node:events';
import type { RequestContext } from '../context.js';
import type { BackendHealth } from '../health.js';
import { VoxgateError, toVoxgateError } from '../../util/errors.js';
import type { SttCapabilities, SttEngine, SttEngineStats, SttFinal, SttPartial, SttStream, SttStreamConfig, SttStreamEvents, SttWord } from './types.js';

/** One backend a model may be served by: an engine instance and where it runs. */
export interface SttBackend {
  /** Engine instance id (key of `engines` in the config), e.g. `worker-eu`. */
  id: string;
  engine: SttEngine;
  /** Region label, e.g. `eu-north-1`. */
  region: string;
  /** World part of {@link region}, e.g. `eu`. */
  worldPart: string;
  /**
   * Fastest rate (× real time) at which replayed audio may be sent to this backend after a
   * mid-stream failover; `null` = no limit (embedded engines, fakes). Absent: the engine's own
   * {@link PacedSttEngine.replayPace} when it declares one, else the engine-wide
   * {@link FailoverOptions.replayPace}. Deepgram caps at 1.25 (upstreams.md §1.1), AssemblyAI and
   * Soniox at 1 (§2.2).
   */
  replayPace?: number | null;
}

/**
 * An engine may declare the pace limit of its backend as an optional property (not part of
 * {@link SttEngine}): × real time, `null` = no limit. Read by failover when the backend entry has none.
 */
export type PacedSttEngine = SttEngine & { readonly replayPace?: number | null };

/** The replay pace for `b`: the backend entry's, else its engine's, else `fallback` (default 1.25). `null` = no limit. */
export function replayPaceOf(b: SttBackend, fallback: number | null | undefined): number | null {
  if (b.replayPace !== undefined) return b.replayPace;
  const own = (b.engine as PacedSttEngine).replayPace;
  if (own !== undefined) return own;
  return fallback === undefined ? 1.25 : fallback;
}

/** A completed mid-stream switch, as reported to {@link FailoverOptions.onSwitch}. */
export interface SttSwitchEvent {
  /** The backend whose stream failed. */
  from: SttBackend;
  /** The backend that took the stream over. */
  to: SttBackend;
  /** The failure that caused the switch. */
  reason: VoxgateError;
  /** Milliseconds from the failure to the new backend's stream being ready (before any replay). */
  gapMs: number;
  /** Seconds of buffered audio (since the last final) replayed to {@link to}, not counting live audio that arrives during the replay. */
  replayedSeconds: number;
}

/** Options of {@link FailoverSttEngine}. */
export interface FailoverOptions {
  /** The gateway's shared health tracker. */
  health: BackendHealth;
  /** Called for every backend that failed (at connect or mid-stream) with the next candidate to be tried, or null (metrics, logs). */
  onFailover?: (from: SttBackend, to: SttBackend | null, reason: VoxgateError) => void;
  /** Called after each successful connect (first and after a switch) with its latency in ms (metrics). */
  onConnect?: (backend: SttBackend, connectMs: number) => void;
  /** Called when a mid-stream switch has a new backend stream ready (failover gap metrics, bench). */
  onSwitch?: (ev: SttSwitchEvent) => void;
  /** Seconds of audio since the last final kept for replay. Default 15. Older audio is dropped (its words are lost on a failover). */
  replaySeconds?: number;
  /** Replay pace (× real time) for backends that do not declare {@link SttBackend.replayPace}. Default 1.25; `null` = no limit. */
  replayPace?: number | null;
  /** Clock in ms (tests inject one). Default `performance.now`. */
  now?: () => number;
  /** Sleep `ms` milliseconds (tests inject one with {@link now}). Default `setTimeout`. */
  sleep?: (ms: number) => Promise<void>;
}

/** The error a start or switch ends with when every candidate failed. */
function exhausted(last: VoxgateError | null): VoxgateError {
  if (last?.code === 'rate_limit') return new VoxgateError('rate_limit', last.message);
  const reason = last ? last.message.replace(/^Failed to connect to backend: /, '') : 'no backend available (all cooling down after failures)';
  return new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${reason}`, { retryable: false });
}

/** An engine that starts each stream on the first backend that accepts it and keeps it alive across backend failures. */
export class FailoverSttEngine implements SttEngine {
  readonly id: string;
  readonly capabilities: SttCapabilities;
  /** The backend the last successful `start()` used (for session metadata and tests). */
  lastBackend: SttBackend | null = null;
  /** @internal clock and sleep used by streams. */
  readonly now: () => number;
  /** @internal */
  readonly sleep: (ms: number) => Promise<void>;

  /**
   * @param backends candidates in preference order (non-empty); the first one's capabilities are the
   *   model's, except `passthroughEncodings`: only those every candidate takes (so any of them can take
   *   a stream over), absent when none; and `diarization`: true only when every candidate diarizes.
   * @throws Error when `backends` is empty.
   */
  constructor(
    readonly backends: readonly SttBackend[],
    /** @internal */
    readonly o: FailoverOptions,
  ) {
    if (backends.length === 0) throw new Error('FailoverSttEngine needs at least one backend');
    this.id = backends[0]!.engine.id;
    const caps = { ...backends[0]!.engine.capabilities };
    // Languages: those of any backend (the first's order first) — a session is routed to the backends
    // serving its language (connect), e.g. smallest.ai's US-only and India-only languages (upstreams.md §1.12).
    caps.languages = [...new Set(backends.flatMap((b) => b.engine.capabilities.languages))];
    const passthrough = commonPassthrough(backends);
    if (passthrough) caps.passthroughEncodings = passthrough;
    else delete caps.passthroughEncodings;
    // Diarization by the backend only when every candidate diarizes: a switch mid-stream must not
    // move the labels to another label space (the embedded diarizer labels the stream otherwise,
    // above this engine: src/engines/stt/diarizing.ts).
    caps.diarization = backends.every((b) => b.engine.capabilities.diarization);
    this.capabilities = caps;
    this.now = o.now ?? (() => performance.now());
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Version of the first backend's engine, when it reports one. */
  get version(): string | undefined {
    return (this.backends[0]!.engine as SttEngine & { version?: string }).version;
  }

  /** Backends are initialised by the registry; nothing to do. */
  async init(): Promise<void> {}

  /**
   * Open a stream on the first available backend; it fails over mid-stream (see {@link FailoverSttStream}).
   * @throws VoxgateError the backend's non-retryable error (auth/config), `rate_limit` when the last
   *   backend tried refused for its rate limit, or `backend_connection_failed` when every backend failed
   *   or is cooling down.
   */
  async start(config: SttStreamConfig, ctx?: RequestContext): Promise<SttStream> {
    const { stream, backend } = await this.connect(config, ctx, new Set(), null);
    this.lastBackend = backend;
    return new FailoverSttStream(this, stream, backend, config, ctx);
  }

  /** The first backend not in `tried` that is available now (a query; takes no probe slot). */
  private peek(tried: ReadonlySet<string>): SttBackend | null {
    return this.backends.find((b) => !tried.has(b.id) && this.o.health.isAvailable(b.id)) ?? null;
  }

  /**
   * @internal Connect to the first available backend not in `exclude`, in preference order.
   * @param last the failure that led here (reported as the reason when no candidate is left).
   * Backends whose engine does not list `config.language` are skipped.
   * @throws VoxgateError as {@link start}; `config_error` when no backend serves the language.
   */
  async connect(config: SttStreamConfig, ctx: RequestContext | undefined, exclude: ReadonlySet<string>, last: VoxgateError | null): Promise<{ stream: SttStream; backend: SttBackend }> {
    const tried = new Set(exclude);
    // Language-aware routing: only backends whose engine serves the stream's language are candidates
    // (the region/host of a provider can depend on the language, upstreams.md §1.12).
    const serving = this.backends.filter((b) => b.engine.capabilities.languages.includes(config.language));
    if (serving.length === 0) {
      throw new VoxgateError('config_error', `unsupported language "${config.language}"; this model supports: ${this.capabilities.languages.join(', ')}`, { retryable: false });
    }
    for (const b of this.backends) if (!serving.includes(b)) tried.add(b.id);
    for (;;) {
      // Healthy backends (and a due probe) first; when none is left, the ones cooling down are tried
      // anyway as a last resort — one failure on every backend must not make the model unavailable for
      // a whole cool-down, nor may a probe in flight turn concurrent sessions away.
      const b = this.backends.find((x) => !tried.has(x.id) && this.o.health.begin(x.id)) ?? this.backends.find((x) => !tried.has(x.id));
      if (!b) break;
      tried.add(b.id);
      if (ctx?.signal?.aborted) {
        this.o.health.release(b.id);
        throw new VoxgateError('backend_connection_failed', 'Failed to connect to backend: request aborted', { retryable: false });
      }
      const t0 = this.now();
      try {
        const stream = await b.engine.start(config, ctx);
        const ms = this.now() - t0;
        this.o.health.success(b.id, ms);
        this.o.onConnect?.(b, ms);
        return { stream, backend: b };
      } catch (err) {
        const e = toVoxgateError(err);
        if (!e.retryable || ctx?.signal?.aborted) {
          this.o.health.release(b.id);
          throw e;
        }
        // A busy backend (`rate_limit`: all its streams in use) is not broken: no cool-down.
        if (e.code === 'rate_limit') this.o.health.release(b.id);
        else this.o.health.failure(b.id, e.message);
        last = e;
        this.o.onFailover?.(b, this.peek(tried), e);
      }
    }
    throw exhausted(last);
  }

  /** Stats of the first backend. */
  stats(): SttEngineStats {
    return this.backends[0]!.engine.stats();
  }

  /** Free streams over the available backends; `Number.MAX_SAFE_INTEGER` when one of them reports no cap. */
  freeStreams(): number {
    let total = 0;
    for (const b of this.backends) {
      if (!this.o.health.isAvailable(b.id)) continue;
      const f = b.engine.freeStreams?.();
      if (f === undefined) return Number.MAX_SAFE_INTEGER;
      total += f;
    }
    return total;
  }

  /** Backends are shut down by their owner (the registry); nothing to do. */
  async shutdown(): Promise<void> {}
}

/** Replay chunk: 100 ms at 16 kHz; paced replays are sent in pieces of at most this many samples. */
const REPLAY_CHUNK_SECONDS = 0.1;
/** Tolerance for comparing times in seconds (float sums of sample counts). */
const EPS = 1e-6;

/** A buffered piece of client audio: `pcm` (PCM samples, or bytes of a raw passthrough encoding) starts at stream unit `pos`. */
interface Piece {
  pos: number;
  pcm: Int16Array | Uint8Array;
}

/** Bytes per sample of the raw (headerless) passthrough encodings, whose bytes map to time and can be replayed from any sample. */
const RAW_BYTES_PER_SAMPLE: Readonly<Record<string, number>> = { linear16: 2, mulaw: 1, alaw: 1 };

/** Encodings every backend accepts undecoded (the intersection: any of them may take a stream over). */
function commonPassthrough(backends: readonly SttBackend[]): string[] | undefined {
  const lists = backends.map((b) => b.engine.capabilities.passthroughEncodings ?? []);
  const common = lists[0]!.filter((e) => lists.every((l) => l.includes(e)));
  return common.length > 0 ? common : undefined;
}

/**
 * A stream that survives backend failures (upstreams.md §2.2). Stream time (seconds from the first
 * sample the client wrote) is what every event carries, whichever backend produced it.
 *
 * - Buffer: the PCM since the last emitted final's end, at most `replaySeconds` (oldest dropped
 *   first while live). Not kept when the engine has a single candidate (nothing to fail over to).
 * - On a retryable backend `error`: health failure, connect to the next candidate (same order as
 *   `start`, the failed one excluded), replay the buffer at ≤ the candidate's pace, then go live.
 *   Client `finalize()` calls not yet answered are re-issued at their audio positions during the
 *   replay; a pending `close()` closes the new backend once the replay is done.
 * - Rebase: every time from the new backend + the replay start (seconds). Dedupe: words ending at or
 *   before the last emitted final's end are dropped (a final left with no words is dropped, except a
 *   `fromFinalize` one, which is always delivered); final starts are clamped to that end.
 * - Partials from a replacement backend are suppressed until one reaches the position where the
 *   replay caught up with live audio (earlier ones describe backlog the client already heard about);
 *   a `speech_started` is suppressed when one was already emitted since the last final.
 * - Non-retryable backend errors are emitted unchanged (no failover, health not marked); when no
 *   candidate is left: `backend_connection_failed` (or `rate_limit`, see {@link FailoverSttEngine.start}).
 *   With a single candidate the wrapper is transparent: the backend's error is emitted unchanged and
 *   its health is not marked (its next stream is not refused for a cool-down).
 */
export class FailoverSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  /** The backend serving the stream now. */
  backend: SttBackend;
  /** Completed mid-stream switches, in order (metadata, tests). */
  readonly switches: SttSwitchEvent[] = [];
  private cur: SttStream | null;
  /** Backends that failed during this stream (never tried again by it). */
  private readonly failedHere = new Set<string>();
  /**
   * Stream positions are in units: PCM samples at the engine's input rate, or bytes for a raw
   * passthrough encoding (`config.passthrough`). `rate` is units per second, `frame` units per sample.
   */
  private readonly rate: number;
  private readonly frame: number;
  /** The stream takes the client's bytes ({@link writeEncoded}) instead of PCM. */
  private readonly encoded: boolean;
  private readonly keep: boolean;
  private readonly cap: number;
  /** Units written by the client. */
  private written = 0;
  /** Units delivered to {@link cur} (stream position). */
  private sentTo = 0;
  /** Stream position (units) of the current backend's time 0. */
  private base = 0;
  /** True once a replacement backend serves the stream (rebase/dedupe apply). */
  private replaced = false;
  private buf: Piece[] = [];
  /** Stream position (units) of the first buffered unit. */
  private bufStart = 0;
  /** End (s, stream time) of the last emitted final. */
  private lastFinalEnd = 0;
  /** Client finalizes not yet answered by a `fromFinalize` final: stream position (units), and whether the current backend got it. */
  private finalizes: { pos: number; issued: boolean }[] = [];
  private mode: 'live' | 'switching' | 'replaying' = 'live';
  /** Partials whose rebased end is before this (s) are suppressed. */
  private partialsFrom = 0;
  /** End (s, stream time) of the last partial emitted: after a switch the client's interim text never shrinks below it. */
  private lastPartialEnd = 0;
  private speechSinceFinal = false;
  /** Incremented whenever the current backend stream changes; events of older streams are ignored. */
  private gen = 0;
  private ended = false;
  private closing: Promise<void> | null = null;
  private resolveClose: (() => void) | null = null;

  constructor(
    private readonly engine: FailoverSttEngine,
    stream: SttStream,
    backend: SttBackend,
    private readonly config: SttStreamConfig,
    private readonly ctx: RequestContext | undefined,
  ) {
    super();
    const pt = config.passthrough;
    this.encoded = pt !== undefined;
    const bytes = pt ? RAW_BYTES_PER_SAMPLE[pt.encoding] : undefined;
    this.frame = pt ? (bytes ?? 1) * Math.max(1, pt.channels) : 1;
    this.rate = pt ? pt.sampleRate * this.frame : engine.capabilities.inputSampleRate;
    // Containers (Opus, WebM, MP3…) cannot be replayed from the middle: a new backend needs their
    // header. Such streams keep nothing and fail like a single-candidate stream.
    this.keep = engine.backends.length > 1 && (!pt || bytes !== undefined);
    this.cap = this.align(Math.round((engine.o.replaySeconds ?? 15) * this.rate));
    this.backend = backend;
    this.cur = stream;
    this.attach(stream);
  }

  /** Seconds of audio written by the client. */
  get audioSeconds(): number {
    return this.written / this.rate;
  }

  /** The current backend's backlog plus audio not yet (re)sent to it, seconds. */
  get backlogSeconds(): number {
    return (this.cur?.backlogSeconds ?? 0) + (this.written - this.sentTo) / this.rate;
  }

  /** Queue PCM; copied when kept for replay. Ignored after close/abort/error. */
  write(pcm: Int16Array): void {
    this.take(pcm);
  }

  /**
   * Queue the client's bytes (streams started with `config.passthrough`; the candidates all take the
   * encoding, see {@link FailoverSttEngine.capabilities}). Raw encodings are kept for replay like PCM.
   */
  writeEncoded(bytes: Uint8Array): void {
    this.take(bytes);
  }

  private take(data: Int16Array | Uint8Array): void {
    if (this.ended || this.closing) return;
    if (!this.keep) {
      this.written += data.length;
      this.sentTo = this.written;
      if (this.cur) this.send(data);
      return;
    }
    const copy = data.slice();
    this.buf.push({ pos: this.written, pcm: copy });
    this.written += copy.length;
    if (this.mode !== 'live') return; // the replay loop sends it
    this.sentTo = this.written;
    this.send(copy);
    this.evict();
  }

  /** Hand audio to the current backend in the stream's form. */
  private send(data: Int16Array | Uint8Array): void {
    if (this.encoded) this.cur!.writeEncoded?.(data as Uint8Array);
    else this.cur!.write(data as Int16Array);
  }

  /** `units` rounded down to a whole sample. */
  private align(units: number): number {
    return units - (units % this.frame);
  }

  /** Exactly one `fromFinalize` final follows, even across a backend switch. */
  finalize(): void {
    if (this.ended || this.closing) return;
    const live = this.mode === 'live';
    this.finalizes.push({ pos: this.written, issued: live });
    if (live) this.cur!.finalize();
  }

  /** Drain the backend serving the stream (after any replay in progress), then release. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((r) => (this.resolveClose = r));
    if (this.ended) this.resolveClose!();
    else if (this.mode === 'live') this.closeCurrent();
    return this.closing;
  }

  /** Release everything now. Idempotent. */
  abort(): void {
    if (this.ended) return;
    this.end();
    this.cur?.abort();
    this.cur = null;
  }

  private end(): void {
    this.ended = true;
    this.gen++;
    this.buf = [];
    this.resolveClose?.();
  }

  /**
   * Drain the current backend. Its close resolving ends the stream only if it did not fail: a backend
   * whose close resolves because its connection dropped usually reports the error in the same turn,
   * so the verdict waits one `setImmediate` and a failure seen by then fails over instead (the
   * replacement then gets the buffered audio and is closed after its replay).
   */
  private closeCurrent(): void {
    const g = this.gen;
    const done = (): void => {
      setImmediate(() => {
        if (g === this.gen && !this.ended) this.end();
      });
    };
    this.cur!.close().then(done, done);
  }

  private attach(s: SttStream): void {
    const g = ++this.gen;
    s.on('partial', (p) => g === this.gen && this.onPartial(p));
    s.on('final', (f) => g === this.gen && this.onFinal(f));
    s.on('speech_started', (e) => g === this.gen && this.onSpeechStarted(e.timestamp));
    s.on('error', (e) => g === this.gen && void this.onError(e));
  }

  private get offset(): number {
    return this.base / this.rate;
  }

  /** Rebased words, minus those an earlier final already carried (only once replaced). */
  private rebaseWords(words: SttWord[]): SttWord[] {
    const off = this.offset;
    const out = words.map((w) => ({ ...w, start: w.start + off, end: w.end + off }));
    return this.replaced ? out.filter((w) => w.end > this.lastFinalEnd + EPS) : out;
  }

  private onFinal(f: SttFinal): void {
    if (!this.replaced) return this.emitFinal(f);
    const off = this.offset;
    let start = f.start + off;
    const end = start + f.duration;
    const out: SttFinal = { ...f };
    if (f.words) {
      const kept = this.rebaseWords(f.words);
      if (kept.length !== f.words.length) {
        if (kept.length === 0 && !f.fromFinalize) return;
        out.transcript = kept.map((w) => w.word).join(' ');
      }
      out.words = kept;
    } else if (end <= this.lastFinalEnd + EPS && f.duration > 0 && !f.fromFinalize) {
      return; // entirely inside audio an earlier final covered
    }
    start = Math.max(start, this.lastFinalEnd);
    out.start = start;
    out.duration = Math.max(0, end - start);
    this.emitFinal(out);
  }

  private emitFinal(f: SttFinal): void {
    this.lastFinalEnd = Math.max(this.lastFinalEnd, f.start + f.duration);
    this.speechSinceFinal = false;
    if (f.fromFinalize) this.finalizes.shift();
    this.trim(Math.min(this.sentTo, this.align(Math.round(this.lastFinalEnd * this.rate))));
    this.emit('final', f);
  }

  private onPartial(p: SttPartial): void {
    if (!this.replaced) {
      this.lastPartialEnd = Math.max(this.lastPartialEnd, p.start + p.duration);
      return void this.emit('partial', p);
    }
    const off = this.offset;
    const end = p.start + off + p.duration;
    if (end < this.partialsFrom - EPS) return;
    const start = Math.max(p.start + off, this.lastFinalEnd);
    const out: SttPartial = { ...p, start, duration: Math.max(0, end - start) };
    if (p.words) {
      out.words = this.rebaseWords(p.words);
      if (out.words.length !== p.words.length) out.transcript = out.words.map((w) => w.word).join(' ');
    }
    this.lastPartialEnd = Math.max(this.lastPartialEnd, end);
    this.emit('partial', out);
  }

  private onSpeechStarted(ts: number): void {
    if (this.replaced && this.speechSinceFinal) return;
    this.speechSinceFinal = true;
    this.emit('speech_started', { timestamp: ts + this.offset });
  }

  /** The current backend's stream failed. */
  private async onError(err: Error): Promise<void> {
    if (this.ended) return;
    const e = toVoxgateError(err);
    const from = this.backend;
    this.gen++; // detach the failed stream
    this.cur?.abort();
    this.cur = null;
    if (!e.retryable) return this.fail(err);
    // Nothing to fail over to (a single candidate, or a container passthrough that cannot be resumed
    // elsewhere): the wrapper stays transparent — the error passes through and, with a single
    // candidate, the model's only backend is not cooled down for its next stream.
    if (this.engine.backends.length === 1) return this.fail(err);
    const o = this.engine.o;
    if (e.code !== 'rate_limit') o.health.failure(from.id, e.message); // busy is not broken: no cool-down
    // Every backend that failed during this stream stays excluded: the last-resort retry of cooling
    // backends (connect) must not bounce a stream between two failing backends.
    this.failedHere.add(from.id);
    const exclude = new Set(this.failedHere);
    o.onFailover?.(from, this.engine.backends.find((b) => !exclude.has(b.id) && o.health.isAvailable(b.id)) ?? null, e);
    if (!this.keep) return this.fail(err);
    this.mode = 'switching';
    const t0 = this.engine.now();
    let next: { stream: SttStream; backend: SttBackend };
    try {
      const ctx = this.ctx ? { ...this.ctx, connectDeadline: undefined } : undefined;
      next = await this.engine.connect(this.config, ctx, exclude, e);
    } catch (err2) {
      if (!this.ended) this.fail(err2 as Error);
      return;
    }
    if (this.ended) {
      next.stream.abort();
      return;
    }
    const ev: SttSwitchEvent = { from, to: next.backend, reason: e, gapMs: this.engine.now() - t0, replayedSeconds: (this.written - this.bufStart) / this.rate };
    this.backend = next.backend;
    this.cur = next.stream;
    this.base = this.bufStart;
    this.sentTo = this.bufStart;
    this.replaced = true;
    for (const f of this.finalizes) f.issued = false;
    this.attach(next.stream);
    this.switches.push(ev);
    o.onSwitch?.(ev);
    this.mode = 'replaying';
    // The new backend's partials are shown as soon as they reach as far as the last one the client
    // saw (so its interim text never goes back), not only once the paced replay caught up with live
    // audio: the first result after a failover comes ~5× sooner at a 1.25× replay pace.
    this.partialsFrom = Math.max(this.lastFinalEnd, this.lastPartialEnd);
    await this.replay(this.gen);
  }

  /** Send the buffered audio from {@link sentTo} to the current backend within its pace, re-issuing finalizes at their positions; then go live. */
  private async replay(g: number): Promise<void> {
    const pace = replayPaceOf(this.backend, this.engine.o.replayPace);
    const chunk = Math.max(this.frame, this.align(Math.round(REPLAY_CHUNK_SECONDS * this.rate)));
    const t0 = this.engine.now();
    let sent = 0;
    while (g === this.gen && !this.ended) {
      for (const f of this.finalizes) {
        if (!f.issued && f.pos <= this.sentTo) {
          f.issued = true;
          this.cur!.finalize();
        }
      }
      if (this.sentTo >= this.written) break;
      if (pace !== null && pace > 0) {
        const wait = t0 + ((sent / this.rate) * 1000) / pace - this.engine.now();
        if (wait > 0) {
          await this.engine.sleep(wait);
          continue;
        }
      }
      const nextFinalize = this.finalizes.find((f) => !f.issued)?.pos ?? Number.POSITIVE_INFINITY;
      const n = Math.min(pace === null ? Number.POSITIVE_INFINITY : chunk, nextFinalize - this.sentTo, this.written - this.sentTo);
      const pcm = this.read(this.sentTo, n);
      if (pcm.length === 0) break; // cannot happen (the buffer holds [bufStart, written)); never spin
      this.sentTo += pcm.length;
      sent += pcm.length;
      this.send(pcm);
    }
    if (g !== this.gen || this.ended) return;
    this.mode = 'live';
    this.evict();
    if (this.closing) this.closeCurrent();
  }

  /** Up to `n` buffered units from stream position `pos` (contiguous; may be fewer at a piece boundary). */
  private read(pos: number, n: number): Int16Array | Uint8Array {
    for (const p of this.buf) {
      const endPos = p.pos + p.pcm.length;
      if (pos >= endPos) continue;
      const from = Math.max(0, pos - p.pos);
      return p.pcm.subarray(from, Math.min(p.pcm.length, from + n));
    }
    return new Uint8Array(0);
  }

  /** Drop buffered audio before stream position `pos` (units). */
  private trim(pos: number): void {
    if (!this.keep || pos <= this.bufStart) return;
    while (this.buf.length > 0) {
      const p = this.buf[0]!;
      if (p.pos + p.pcm.length <= pos) {
        this.buf.shift();
        continue;
      }
      if (p.pos < pos) this.buf[0] = { pos, pcm: p.pcm.subarray(pos - p.pos) };
      break;
    }
    this.bufStart = this.buf[0]?.pos ?? Math.max(pos, this.bufStart);
    if (this.buf.length === 0) this.bufStart = Math.min(pos, this.written);
  }

  /** Keep at most `replaySeconds` while live (during a replay unsent audio is never dropped). */
  private evict(): void {
    if (this.written - this.bufStart > this.cap) this.trim(this.written - this.cap);
  }

  /** End the stream with `err` (emitted once). */
  private fail(err: Error): void {
    if (this.ended) return;
    this.end();
    this.cur?.abort();
    this.cur = null;
    this.emit('error', err);
  }
}
