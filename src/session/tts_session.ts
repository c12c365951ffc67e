/**
 * The streaming TTS session state machine (issue #4; shared/spec/protocols.md §1.5 "Ordering /
 * lifecycle", §3, §5, §6.7–6.8):
 *
 *   awaiting_init ──init──▶ streaming ──close──▶ closed
 *        │  (Deepgram: starts in streaming, configured from the URL; `Metadata` = ready)
 *        └─ text/flush before init → error frame, message ignored; bad init → config_error, close
 *
 * Pipeline: `text` → {@link TextSegmenter} (sentence/clause boundaries) → queue → one engine job
 * at a time → encoder (resample + encode) → audio frames. Per segment: `segment_start`, audio,
 * `segment_end` — the encoder is flushed at the end of each segment (`AudioEncoder.endSegment`:
 * resampler tail; for mp3/opus the segment's ffmpeg stream is finished), so `segment_end` follows
 * the segment's last audio byte in every encoding. Per `flush`: the rest of the buffered text is
 * synthesised, then `audio_end` {duration} (when the utterance had audio) and `flushed`.
 *
 * Hang-up (`close`/`Close`, protocols.md §1.5 S1 "close session and stop further audio", §3 Deepgram
 * "Close will close the websocket connection immediately"): synchronously, the session stops all
 * work exactly as a vanished client does — engine job killed (SIGKILL), ffmpeg killed, queue and
 * segmenter emptied, pacing stopped — and closes the socket with 1000 and no final message. To
 * drain instead, a client sends `flush` and waits for `flushed` (or `audio_end`) before `close`.
 *
 * Barge-in (`clear`, and `cancel`): synchronously, the session bumps its *epoch*, kills the engine
 * job (SIGKILL) and the ffmpeg encoder, empties the queue and the segmenter, then sends
 * `cleared`. Every audio write checks the epoch it was produced in, so no audio from before the
 * clear can follow `cleared` on the wire.
 *
 * Backpressure: bytes handed to the socket but not yet taken by the kernel are counted; above
 * `tts.limits.maxBufferedBytes` synthesis pauses (the engine's pipe fills and it blocks) until half
 * of that has drained. A client that reads nothing for `backpressureTimeoutSeconds` while audio
 * waits — or a backlog four times the limit — gets `backpressure` and the session closes.
 * Text not yet synthesised is capped at `maxPendingChars` (`backpressure` error, message rejected).
 *
 * Real-time pacing: audio is sent at most `realtimeLeadSeconds` (default 3 s) ahead of real-time
 * playback, so `cleared` has little audio to overtake and an interrupted answer is not synthesised
 * to its end; `config.pacing: false` (or `?pacing=false`) sends audio as fast as it is synthesised.
 *
 * Timers: `initTimeoutSeconds` for `init`; `idleTimeoutSeconds` without any client frame
 * (`keepalive` and WebSocket pings count) *while idle* — never while audio is being produced;
 * `maxSessionSeconds` overall.
 *
 * Server shutdown ({@link TtsSession.drain}, issue #14 item 4). The spec defines no going-away
 * message for TTS (protocols.md §1.5, §3), so voxgate finishes what the client already asked for:
 * text already received is spoken to its end — sent as fast as it is synthesised (real-time pacing
 * off; the client buffers it) — followed by `audio_end`, then close **1001** `server shutting down`.
 * New `text`/`flush` is refused with an error frame naming the shutdown; `clear`/`cancel` stops the
 * audio at once (`cleared`) and closes 1001; `close` is still a hang-up (1000). A session not closed
 * by the deadline is closed 1001 (the audio not yet sent is lost; the reason says so). A session
 * waiting for `init` closes 1001 at once.
 */
import type { Logger } from 'pino';
import { createEncoder, isPcmEncoding, type AudioEncoder } from '../audio/encode.js';
import type { Limits } from '../config/config.js';
import type { TtsLimits, TtsModelEntry } from '../config/tts_config.js';
import type { TtsEngine, TtsStream } from '../engines/tts/types.js';
import { openTtsStream } from '../engines/tts/segmented.js';
import type { CloseSpec, TtsCommand, TtsDialect, TtsEvent, TtsInitRequest, TtsSessionInfo, WireFrame } from '../protocol/tts_events.js';
import { SessionCore, type SessionClose } from './core.js';
import { CloseCode, toVoxgateError, type ErrorCode } from '../util/errors.js';
import { lookupVoice, resolveTtsOptions, type ResolvedTtsOptions } from './tts_options.js';

/** What a TTS session needs from its transport (a WebSocket in production). */
export interface TtsTransport {
  /**
   * Send one frame (string = text frame, Buffer = binary frame), in order. `done` must be called
   * exactly once, when the frame has been handed to the kernel or the send failed.
   */
  send(frame: WireFrame, done: () => void): void;
  /** Close with a WebSocket close code and a short reason (≤ 123 bytes). */
  close(code: number, reason: string): void;
}

/** Lifecycle states (see module docs). */
export type TtsSessionState = 'awaiting_init' | 'streaming' | 'closed';

/** Observes session activity (metrics). Calls must be cheap and must not throw. */
export interface TtsSessionObserver {
  error(code: ErrorCode): void;
  /** One segment was synthesised: its text length (characters). */
  segment(chars: number): void;
}

/** Options of a {@link TtsSession}. */
export interface TtsSessionOptions {
  model: TtsModelEntry;
  engine: TtsEngine;
  dialect: TtsDialect;
  limits: Limits;
  ttsLimits: TtsLimits;
  transport: TtsTransport;
  log: Logger;
  /** Options resolved from the URL for dialects without `init` (Deepgram); the session starts at once. */
  resolved?: ResolvedTtsOptions;
  /** With `resolved`: `false` turns real-time pacing off (URL `pacing=false`). */
  pacing?: boolean;
  /** Called once when the session reaches `closed`. */
  onClosed?: (s: TtsSession) => void;
  observer?: TtsSessionObserver;
}

/**
 * Why a flush was asked, in order: `client` (a `flush` frame: `audio_end` + `flushed`) or `shutdown`
 * (end the utterance with no `flushed`, then close 1001, see {@link TtsSession.drain}).
 */
type FlushKind = 'client' | 'shutdown';

/** One client connection on a TTS WebSocket route. Drive it with the `handle*` methods. */
export class TtsSession extends SessionCore<Exclude<TtsSessionState, 'closed'>> {
  private resolved: ResolvedTtsOptions | null = null;
  /**
   * The engine's streaming session (engines/tts/segmented.ts adapts per-segment engines: it owns the
   * text segmenter, the segment queue and the engine jobs). Opened at `init`.
   */
  private stream: TtsStream | null = null;
  /** One entry per flush asked of the stream and not yet `flushed`. */
  private readonly flushKinds: FlushKind[] = [];
  /** Events held until this many more flushes are `flushed` (answers that must follow earlier `Flushed`). */
  private readonly afterFlushes: { flushes: number; ev: TtsEvent }[] = [];
  /** Bumped by every clear/cancel; work from an older epoch must not reach the wire. */
  private epoch = 0;
  private encoder: AudioEncoder | null = null;
  private encoderHasAudio = false;
  private audioSeq = 0;
  private flushCount = 0;
  private clearCount = 0;
  private totalSeconds = 0;
  private inflight = 0;
  private socketDrain: { promise: Promise<void>; resolve: () => void } | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  /** Set while a fatal error is being reported, so reporting it cannot re-trigger it. */
  private ending = false;
  /** Real-time pacing (see `tts.limits.realtimeLeadSeconds`). */
  private pacing = true;
  /** performance.now() (ms) at which the audio sent so far would finish playing back to back. */
  private playEnd = 0;
  private paceWait: { timer: NodeJS.Timeout; resolve: () => void } | null = null;
  /** Shutdown drain ({@link drain}) deadline timer; null when no drain was asked. */
  private shutdownTimer: NodeJS.Timeout | null = null;
  constructor(private readonly o: TtsSessionOptions) {
    super('awaiting_init', { idPrefix: 'sess_tts_', log: o.log, modelCode: o.model.code, maxSessionSeconds: o.limits.maxSessionSeconds });
    if (o.resolved) this.start(o.resolved, o.pacing ?? true);
    else this.armIdleTimer();
  }

  /** Current lifecycle state. */
  get state(): TtsSessionState {
    return this.st;
  }
  /** Seconds of audio delivered in finished utterances plus the current one. */
  get audioSeconds(): number {
    return this.totalSeconds + (this.encoderHasAudio && this.encoder ? this.encoder.seconds : 0);
  }
  /** Bytes handed to the transport and not yet written out. */
  get bufferedBytes(): number {
    return this.inflight;
  }

  /** Handle one text frame. Never throws. */
  handleText(text: string): void {
    if (this.st === 'closed') return;
    this.touch();
    const refused = this.textRefusal(text, { maxChars: this.o.limits.maxFrameBytes, maxJsonDepth: this.o.limits.maxJsonDepth, maxJsonTokens: this.o.limits.maxJsonTokens });
    if (refused) {
      this.dispatch(refused.tooLong ? this.o.dialect.oversizedFrame(Buffer.byteLength(text), this.o.limits.maxFrameBytes) : this.o.dialect.rejectedText(refused.message));
      return;
    }
    this.dispatch(this.o.dialect.parseText(text));
  }

  /** A text frame that is not valid UTF-8 arrived: the dialect's answer to a malformed frame. Never throws. */
  handleInvalidText(): void {
    if (this.st === 'closed') return;
    this.touch();
    this.dispatch(this.o.dialect.rejectedText('text frame is not valid UTF-8'));
  }

  /**
   * A frame over the hard limit (2 × `maxFrameBytes`) arrived: the transport cannot skip it, so the
   * session answers as for any oversized frame and closes 1009 (issue 14 #8). `limit` in bytes.
   */
  handleOversizedFrame(limit: number): void {
    if (this.st === 'closed') return;
    const cmd = this.o.dialect.oversizedFrame(limit + 1, this.o.limits.maxFrameBytes);
    if (cmd.kind !== 'invalid') return;
    this.fatal(cmd.code, cmd.message.replace(/frame of \d+ bytes/, `frame over ${limit} bytes`), cmd.close ?? { code: CloseCode.TOO_BIG, reason: cmd.code });
  }

  /** Handle one binary frame (never valid on TTS). Never throws. */
  handleBinary(data: Uint8Array): void {
    if (this.st === 'closed') return;
    this.touch();
    this.dispatch(data.length > this.o.limits.maxFrameBytes ? this.o.dialect.oversizedFrame(data.length, this.o.limits.maxFrameBytes) : this.o.dialect.binaryFrame(data.length));
  }

  /** A WebSocket ping arrived: counts as activity (§1.5 keep-alive by ping). */
  handlePing(): void {
    if (this.st !== 'closed') this.touch();
  }

  /**
   * Graceful shutdown (see the module docs): speak the text already received, then close 1001;
   * a session waiting for `init` closes 1001 at once. At `deadlineMs` the session is closed 1001
   * regardless. Idempotent (the first deadline stands).
   * @param deadlineMs milliseconds until the session is closed regardless (≥ 0).
   * @returns a promise resolved when the session is closed; never rejects.
   */
  drain(deadlineMs: number): Promise<void> {
    if (this.st === 'closed' || this.shutdownTimer) return this.closed;
    this.shutdownTimer = setTimeout(() => {
      if (this.st === 'closed') return;
      this.log.warn({ state: this.st }, 'shutdown deadline reached: closing before all audio was sent');
      this.terminate(CloseCode.GOING_AWAY, 'server shutting down: drain deadline reached, audio not yet sent is lost');
    }, Math.max(0, deadlineMs));
    this.log.info({ state: this.st, deadline_ms: deadlineMs }, 'draining for shutdown');
    if (this.st === 'awaiting_init') {
      this.terminate(CloseCode.GOING_AWAY, 'server shutting down');
    } else if (this.st === 'streaming') {
      this.pacing = false; // finish quickly: the client buffers what it has not played yet
      this.stopPacing();
      this.flushKinds.push('shutdown');
      this.stream?.flush();
    }
    return this.closed;
  }

  /** The client vanished: stop all work now. */
  handleTransportClose(): void {
    if (this.st === 'closed') return;
    this.log.debug({ state: this.st }, 'transport closed by client');
    this.finish();
  }

  // ---- commands ----

  private dispatch(cmd: TtsCommand): void {
    if (this.dispatchCommon<TtsInitRequest>(cmd, 'session already initialised; voice and format are fixed at init (reconnect to change them)', (init) => this.init(init))) return;
    switch (cmd.kind) {
      case 'close':
        // Hang-up: no audio and no message follow; everything in progress is killed (see module docs).
        this.log.debug({ state: this.st, busy: this.stream?.busy ?? false }, 'close: stopping at once');
        this.terminate(CloseCode.NORMAL, this.st === 'awaiting_init' ? 'closed before init' : 'session closed');
        return;
      default:
        break;
    }
    if (this.st === 'awaiting_init') {
      this.sendError('invalid_request', `"${cmd.kind}" before "init" was ignored; send {"type":"init",...} first`);
      return;
    }
    if (this.shutdownTimer && (cmd.kind === 'clear' || cmd.kind === 'cancel')) {
      this.clear(); // barge-in still works while shutting down: stop the audio, then go
      this.terminate(CloseCode.GOING_AWAY, 'server shutting down');
      return;
    }
    if (this.shutdownTimer && (cmd.kind === 'text' || cmd.kind === 'flush')) {
      this.sendError('invalid_request', `"${cmd.kind}" was ignored: the server is shutting down; text already received is being spoken, then the session closes`);
      return;
    }
    switch (cmd.kind) {
      case 'text':
        this.addText(cmd.text);
        if (cmd.flush) this.flush();
        return;
      case 'flush':
        this.flush();
        return;
      case 'warning':
        // The dialect refused the frame (Deepgram: Flush over its rate limit); say so, change nothing.
        // It answers the refused frame, so it follows the answers to the frames before it (the
        // `Flushed` of flushes still being processed).
        this.log.info({ code: cmd.code }, cmd.description);
        this.emitAfterPendingFlushes({ kind: 'warning', code: cmd.code, description: cmd.description });
        return;
      case 'clear':
      case 'cancel':
        this.clear();
        return;
    }
  }

  private init(req: TtsInitRequest): void {
    let resolved: ResolvedTtsOptions;
    try {
      const voice = req.voice ?? (req.model !== undefined && lookupVoice(this.o.model, this.o.engine, req.model) ? req.model : undefined);
      resolved = resolveTtsOptions({ voice, language: req.language, encoding: req.encoding, sampleRate: req.sampleRate, speed: req.speed }, this.o.model, this.o.engine);
    } catch (err) {
      const e = toVoxgateError(err);
      this.fatal(e.code, e.message);
      return;
    }
    this.start(resolved, req.pacing ?? true);
  }

  private start(resolved: ResolvedTtsOptions, pacing: boolean): void {
    this.resolved = resolved;
    this.pacing = pacing;
    this.st = 'streaming';
    const info: TtsSessionInfo = {
      sessionId: this.id,
      requestId: this.requestId,
      model: this.o.model,
      voice: resolved.voice,
      voiceName: resolved.voiceName,
      engine: { id: this.o.engine.id, version: this.o.engine.version },
      encoding: resolved.encoding,
      sampleRate: resolved.sampleRate,
    };
    this.log.info({ voice: resolved.voice.id, encoding: resolved.encoding, sample_rate: resolved.sampleRate, speed: resolved.speed }, 'tts session ready');
    this.o.engine.prepare?.({ voice: resolved.voice.id, speed: resolved.speed });
    this.stream = openTtsStream(this.o.engine, { voice: resolved.voice.id, speed: resolved.speed });
    void this.consume(this.stream);
    this.emit({ kind: 'ready', info });
    this.prewarm();
    this.armIdleTimer();
  }

  private addText(text: string): void {
    if (!text) return; // empty text is a no-op, not an error
    const pending = this.stream!.pendingChars;
    if (pending + text.length > this.o.ttsLimits.maxPendingChars) {
      this.sendError('backpressure', `text rejected: ${pending} characters are already waiting to be spoken (limit ${this.o.ttsLimits.maxPendingChars}); read the audio before sending more`);
      return;
    }
    this.stream!.pushText(text);
  }

  private flush(): void {
    this.flushKinds.push('client');
    this.stream!.flush();
  }

  /** Barge-in: drop all text and audio not yet sent, stop engine work, acknowledge. Synchronous. */
  private clear(): void {
    this.epoch++;
    this.stream!.clear();
    this.flushKinds.length = 0;
    for (const held of this.afterFlushes.splice(0)) this.emit(held.ev); // answers to frames already received
    this.encoder?.abort();
    if (this.encoderHasAudio && this.encoder) this.totalSeconds += this.encoder.seconds;
    this.encoder = null;
    this.encoderHasAudio = false;
    this.wakeDrain();
    this.stopPacing(); // the client stops playback: the virtual player is empty
    this.emit({ kind: 'cleared', sequenceId: this.clearCount++ });
    this.prewarm();
    this.armIdleTimer();
  }

  // ---- synthesis ----

  /**
   * Turn the engine stream's events into wire events, for the whole session: segment_start →
   * encoder (resample + encode, real-time pacing) → audio frames → segment_end after the segment's
   * last byte; `flushed` → `audio_end` + `flushed` (or, for a shutdown, close 1001). Pulling the next
   * event only after the current one is on its way is the flow control (see segmented.ts). Events
   * of a generation before the last `clear` are dropped.
   */
  private async consume(stream: TtsStream): Promise<void> {
    let segment = { chars: 0, failed: false };
    try {
      for await (const ev of stream) {
        if (this.st === 'closed') break;
        if (ev.gen !== stream.generation) continue;
        const epoch = this.epoch;
        switch (ev.kind) {
          case 'segment_start': {
            this.emit({ kind: 'segment_start', segmentId: ev.segmentId });
            segment = { chars: ev.text.length, failed: false };
            this.currentEncoder(epoch).prepare(); // mp3/opus: this segment's ffmpeg starts while the engine works
            this.encoderHasAudio = true;
            break;
          }
          case 'audio': {
            const wait = this.currentEncoder(epoch).write(ev.pcm);
            if (wait) await wait;
            const paced = this.pace(ev.pcm.length / stream.sampleRate, epoch);
            if (paced) await paced;
            // Let the event loop run between chunks (resampling is synchronous work): a `clear` arriving
            // mid-segment is then handled within one chunk's processing time, not after the whole segment.
            else await new Promise<void>((r) => setImmediate(r));
            break;
          }
          case 'segment_error':
            segment.failed = true;
            // One segment the engine could not speak: report it, keep the session.
            this.sendError('provider_error', `segment ${ev.segmentId} could not be synthesised and was skipped: ${ev.error.message}`);
            break;
          case 'segment_end': {
            // Every byte of this segment (resampler tail, the ffmpeg stream's last frames) goes out first.
            if (!segment.failed) this.o.observer?.segment(segment.chars);
            if (this.encoder) await this.encoder.endSegment();
            if (epoch === this.epoch) this.emit({ kind: 'segment_end', segmentId: ev.segmentId });
            break;
          }
          case 'flushed': {
            const kind = this.flushKinds.shift() ?? 'client';
            await this.endUtterance(epoch, kind === 'client');
            for (const held of this.afterFlushes) held.flushes--;
            while (this.afterFlushes.length > 0 && this.afterFlushes[0]!.flushes <= 0) this.emit(this.afterFlushes.shift()!.ev);
            if (kind === 'shutdown' && epoch === this.epoch) this.terminate(CloseCode.GOING_AWAY, 'server shutting down');
            break;
          }
        }
        if (this.state !== 'closed' && !stream.busy) this.armIdleTimer();
      }
    } catch (err) {
      if (this.st !== 'closed' && (err as Error).name !== 'AbortError') {
        const e = toVoxgateError(err);
        this.log.error({ err: e.message }, 'tts pipeline failed');
        // The engine's own code reaches the client (issue 10: `backend_connection_failed` "Failed to
        // connect to backend: …" from failover, an upstream's config/rate refusal); only uncoded
        // engine failures are reported as the synthesis failing.
        if (e.code === 'internal_error' || e.code === 'provider_error') this.fatal(e.code, `speech synthesis failed: ${e.message}`);
        else this.fatal(e.code, e.message);
      }
    }
  }

  /**
   * A `flush` (or a shutdown) reached the head of the queue: end the utterance (`audio_end` when it
   * had audio), then `flushed` when `ack` (a client's flush).
   */
  private async endUtterance(epoch: number, ack: boolean): Promise<void> {
    const encoder = this.encoder;
    const hadAudio = this.encoderHasAudio && encoder !== null;
    if (hadAudio) {
      try {
        await encoder.end();
      } catch (err) {
        if (epoch !== this.epoch) return;
        const e = toVoxgateError(err);
        if (e.code !== 'provider_error') throw err;
        // The encoder process was lost (e.g. its spawner helper died): this utterance's audio is
        // incomplete, the session goes on with a new encoder for the next one.
        this.encoder = null;
        this.encoderHasAudio = false;
        this.sendError('provider_error', `the audio of this utterance is incomplete: ${e.message}`);
        if (ack) {
          this.emit({ kind: 'flushed', sequenceId: this.flushCount++ });
          this.prewarm();
        }
        return;
      }
      if (epoch !== this.epoch) return;
      this.encoder = null;
      this.encoderHasAudio = false;
      this.totalSeconds += encoder.seconds;
      this.emit({ kind: 'audio_end', duration: encoder.seconds });
    }
    if (!ack) return;
    this.emit({ kind: 'flushed', sequenceId: this.flushCount++ });
    if (hadAudio) this.prewarm();
  }

  /** The encoder of the current utterance, created on first use; its output is tied to `epoch`. */
  private currentEncoder(epoch: number): AudioEncoder {
    if (!this.encoder) {
      const r = this.resolved!;
      this.encoder = createEncoder({ encoding: r.encoding, sampleRate: r.sampleRate, inputRate: r.voice.sampleRate, sink: (bytes) => this.sendAudio(bytes, epoch) });
    }
    return this.encoder;
  }

  /** mp3/opus: start the next ffmpeg now so its start-up does not delay the next first audio. */
  private prewarm(): void {
    if (this.st === 'streaming' && this.resolved && !isPcmEncoding(this.resolved.encoding) && !this.encoder) this.currentEncoder(this.epoch);
  }

  // ---- output and flow control ----

  /**
   * Real-time pacing: `seconds` of audio were just produced. A virtual player plays everything sent
   * back to back (restarting at "now" after a gap); when it would be more than the lead behind,
   * wait until it is not. Cleared by `clear` and on close.
   */
  private pace(seconds: number, epoch: number): void | Promise<void> {
    const lead = this.o.ttsLimits.realtimeLeadSeconds;
    if (!this.pacing || lead <= 0 || epoch !== this.epoch) return;
    const now = performance.now();
    this.playEnd = Math.max(this.playEnd, now) + seconds * 1000;
    const wait = this.playEnd - now - lead * 1000;
    if (wait <= 0) return;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.paceWait = null;
        resolve();
      }, wait);
      this.paceWait = { timer, resolve };
    });
  }

  private stopPacing(): void {
    const w = this.paceWait;
    this.paceWait = null;
    this.playEnd = 0;
    if (w) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  private sendAudio(bytes: Buffer, epoch: number): void | Promise<void> {
    if (epoch !== this.epoch || this.st === 'closed') return;
    this.emit({ kind: 'audio', data: bytes, sequence: ++this.audioSeq });
    if (this.inflight > this.o.ttsLimits.maxBufferedBytes) return this.waitDrain();
  }

  /** Emit `ev` once every flush asked so far has been answered (at once when none is pending). */
  private emitAfterPendingFlushes(ev: TtsEvent): void {
    if (this.flushKinds.length === 0) this.emit(ev);
    else this.afterFlushes.push({ flushes: this.flushKinds.length, ev });
  }

  private emit(ev: TtsEvent): void {
    if (this.st === 'closed') return;
    for (const frame of this.o.dialect.encode(ev)) this.sendFrame(frame);
  }

  private sendFrame(frame: WireFrame): void {
    const n = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    this.inflight += n;
    let done = false;
    this.o.transport.send(frame, () => {
      if (done) return;
      done = true;
      this.inflight -= n;
      if (this.socketDrain && this.inflight <= this.o.ttsLimits.maxBufferedBytes / 2) this.wakeDrain();
    });
    if (this.inflight > this.o.ttsLimits.maxBufferedBytes * 4 && this.st !== 'closed' && !this.ending) {
      this.fatal('backpressure', `the client is not reading: ${this.inflight} bytes of audio are waiting to be sent`);
    }
  }

  private waitDrain(): Promise<void> {
    if (!this.socketDrain) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.socketDrain = { promise, resolve };
      const s = this.o.ttsLimits.backpressureTimeoutSeconds;
      this.stallTimer = setTimeout(() => this.fatal('backpressure', `the client read no audio for ${s} s while ${this.inflight} bytes were waiting`), s * 1000);
    }
    return this.socketDrain.promise;
  }

  private wakeDrain(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    const d = this.socketDrain;
    this.socketDrain = null;
    d?.resolve();
  }

  // ---- timers ----

  private touch(): void {
    if (this.st === 'streaming') this.armIdleTimer();
  }

  /** `init` deadline (awaiting_init) or idleness while streaming; never while audio is being produced. */
  private armIdleTimer(): void {
    const seconds = this.st === 'awaiting_init' ? this.o.limits.initTimeoutSeconds : this.o.limits.idleTimeoutSeconds;
    this.armIdle(seconds, () => {
      if (this.stream?.busy) {
        this.armIdleTimer(); // producing audio is not idleness
        return;
      }
      this.fatal(
        'idle_timeout_exceeded',
        this.st === 'awaiting_init' ? `no valid "init" within ${seconds} s` : `no message received for ${seconds} s (send {"type":"keepalive"} or a WebSocket ping while silent)`,
      );
    });
  }

  /** `limits.maxSessionSeconds` passed. */
  protected onMaxDuration(message: string): void {
    this.fatal('max_connection_duration_exceeded', message);
  }

  // ---- endings ----

  protected reportError(code: ErrorCode, message: string): void {
    this.sendError(code, message);
  }

  protected fail(code: ErrorCode, message: string, close?: SessionClose): void {
    this.fatal(code, message, close);
  }

  private sendError(code: ErrorCode, message: string): void {
    this.log.info({ code }, message);
    this.o.observer?.error(code);
    this.emit({ kind: 'error', code, message });
  }

  /** Send the error in the dialect's way, stop all work and close (the dialect picks the close code unless given). */
  private fatal(code: ErrorCode, message: string, close?: CloseSpec): void {
    if (this.st === 'closed' || this.ending) return;
    this.ending = true;
    this.sendError(code, message);
    const c = close ?? this.o.dialect.closeFor(code);
    this.terminate(c.code, c.reason);
  }

  protected closeTransport(code: number, reason: string): void {
    this.o.transport.close(code, reason);
  }

  protected notifyClosed(): void {
    this.o.onClosed?.(this);
  }

  protected release(): void {
    this.epoch++;
    this.stream?.close();
    this.flushKinds.length = 0;
    if (this.encoderHasAudio && this.encoder) this.totalSeconds += this.encoder.seconds;
    this.encoder?.abort();
    this.encoder = null;
    this.encoderHasAudio = false;
    this.wakeDrain();
    this.stopPacing();
    if (this.shutdownTimer) clearTimeout(this.shutdownTimer);
  }
}
