/**
 * The streaming STT session state machine (issue #2; shared/spec/protocols.md §1.3 "Ordering and
 * lifecycle rules", §1.4, §5):
 *
 *   awaiting_init ──init──▶ starting ──engine stream──▶ streaming ──close──▶ draining ──▶ closed
 *         │                    │  (frames queued, in order)         │ finalize: flush, stay
 *         └─ audio → close 1008                                      └ idle / max duration → drain, close 1008
 *
 * Rules:
 * - Binary audio before `init` closes with 1008 (§1.3 rule 3, §5).
 * - Malformed JSON / unknown `type` → `invalid_request` error frame; the session survives.
 * - `init` with an unsupported encoding, sample rate or language → `config_error`, then close 1008.
 * - A second `init`, an odd-length linear16 frame, a frame over the size limit → error frame; the
 *   session survives and the frame is rejected (the error says so — nothing is dropped silently).
 * - No client frame for `idleTimeoutSeconds` (`keepalive` counts) → `idle_timeout_exceeded`, then the
 *   session drains (finals for audio already sent are delivered) and closes 1008.
 * - `close` drains: every final for audio already sent is delivered, then close 1000.
 * - The transport vanishing aborts the engine stream at once (its decoder returns to the pool).
 * - Audio goes through a `PcmDecoder` (src/audio/decoder.ts): raw encodings in-process and
 *   synchronously, compressed ones (Ogg/WebM Opus, MP3, FLAC, AAC) through an ffmpeg child or WASM.
 *   Undecodable audio → `invalid_audio` error, then close 1008; `finalize` flushes the decoder first,
 *   `close` drains it, and every way a session ends kills it (no decoder process outlives its session).
 * Frames that arrive while the engine stream is starting are queued and replayed in order, so a
 * client may stream right after `init` without waiting for `ready`/`Metadata` (§1.4).
 *
 * Server-initiated endings (issue #14 items 4 and 9): when the *server* ends a session — an idle or
 * duration limit, or a shutdown {@link SttSession.drain} — audio frames the client sent before it
 * learned of the ending are still in flight. They are expected, not a protocol error: they get no
 * per-frame error (which in the Deepgram dialect would even abort the drain); their byte count is
 * logged and named in the close reason, and the limit's error frame says that audio sent after it
 * is not transcribed.
 *
 * Shutdown drain ({@link SttSession.drain}): a session in mid-utterance keeps streaming until that
 * utterance ends (endpoint final) for at most half the deadline; then, as for `close`, every final
 * for audio received is delivered with the dialect's closing messages (`/v1/listen` and
 * deepgram-style `Metadata`, smallest.ai `is_last`) and the session closes 1001. At the deadline a
 * session still open is closed 1001 at once (results not yet decoded are lost; the reason says so).
 */
import type { RequestContext } from '../engines/context.js';
import { createHash, type Hash } from 'node:crypto';
import type { Logger } from 'pino';
import { COMPRESSED_STREAM_ENCODINGS, RAW_ENCODINGS, createPcmDecoder, isRawEncoding, normalizeEncoding, type DecoderEncoding, type PcmDecoder } from '../audio/decoder.js';
import { STREAM_SAMPLE_RATES } from '../audio/input.js';
import type { Limits, SttModelEntry } from '../config/config.js';
import type { SttEngine, SttStream, SttStreamConfig } from '../engines/stt/types.js';
import { ChannelFanout } from './channel_fanout.js';
import { diarizationMode, startDiarizedStream } from '../engines/stt/diarizing.js';
import type { Diarizer } from '../diarize/types.js';
import type { ClientCommand, SessionEvent, SessionInfo, SttDialect, SttInitRequest } from '../protocol/events.js';
import { SessionCore, type SessionClose } from './core.js';
import { createPassthroughDecoder } from '../audio/passthrough.js';
import { CloseCode, VoxgateError, toVoxgateError, type ErrorCode } from '../util/errors.js';
import { defaultLanguage, modelLanguageRefusal } from '../config/model_language.js';
import { checkDiarizeOptions } from '../diarize/hints.js';

/** What a session needs from its transport (a WebSocket in production, a fake in unit tests). */
export interface SessionTransport {
  /** Send one text frame. */
  sendText(frame: string): void;
  /** Close the connection with a WebSocket close code and a short reason (≤ 123 bytes). */
  close(code: number, reason: string): void;
  /** Stop reading client frames (backpressure); frames stay in the kernel/TCP window. */
  pause?(): void;
  /** Resume reading after {@link pause}. */
  resume?(): void;
}

/** Backlog (seconds of undecoded audio) at which a session stops reading its socket. */
export const BACKPRESSURE_HIGH_SECONDS = 10;
/** Backlog at which reading resumes. */
export const BACKPRESSURE_LOW_SECONDS = 5;

/**
 * Shortest engine silence, seconds, after which a draining session gives up on its engine: while
 * draining, an engine that emits no result and decodes none of its backlog for
 * max(idle timeout, this) seconds is stalled, and the session ends with the engine-failure error
 * instead of waiting until `maxSessionSeconds`.
 */
export const DRAIN_STALL_MIN_SECONDS = 5;

/** Lifecycle states (see module docs). */
export type SttSessionState = 'awaiting_init' | 'starting' | 'streaming' | 'draining' | 'closed';

/** Default trailing silence that ends an utterance, ms (issue #2 "Endpointing"). */
export const DEFAULT_ENDPOINTING_MS = 300;

/** Observes session activity (metrics). Calls must be cheap and must not throw. */
export interface SessionObserver {
  final(reason: 'endpoint' | 'finalize' | 'other'): void;
  error(code: ErrorCode): void;
  /** Reading was paused because the engine's backlog passed the high-water mark. */
  backpressure(): void;
}

/** Options of an {@link SttSession}. */
export interface SttSessionOptions {
  model: SttModelEntry;
  dialect: SttDialect;
  engine: SttEngine & { version?: string };
  limits: Limits;
  transport: SessionTransport;
  log: Logger;
  /** Called once when the session reaches `closed`. */
  onClosed?: (s: SttSession) => void;
  /**
   * Settings already known from the URL (Deepgram `/v1/listen`, smallest.ai query strings): the session
   * starts at once, with no `init` frame, and must have been validated with {@link resolveInit}.
   */
  init?: SttInitRequest;
  /** Request id to report (Deepgram `request_id`, the `dg-request-id` header). Default: a new UUID. */
  requestId?: string;
  /**
   * Request context passed to every `engine.start()` (engine contract v2: request id, model code,
   * region/world-part pins, AbortSignal; src/engines/context.ts). Made by the front door's backend
   * selection (src/server/router.ts); absent = the engine gets none.
   */
  ctx?: RequestContext;
  observer?: SessionObserver;
  /** The embedded diarizer for streams asking for `diarize` on engines that do not diarize (issue 13). Default: {@link defaultDiarizer}. */
  diarizer?: Diarizer;
}

/** Validated `init` → engine config plus the audio format. */
interface ResolvedInit {
  stream: SttStreamConfig;
  /** Canonical encoding; compressed ones are decoded by ffmpeg / WASM (src/audio/decoder.ts). */
  encoding: DecoderEncoding;
  sampleRate: number;
  channels: number;
  vadEvents: boolean;
  multichannel: boolean;
  /** ms, or null when utterance-end events are off. */
  utteranceEndMs: number | null;
  format?: SttInitRequest['format'];
  replies?: SttInitRequest['replies'];
}

/**
 * Validate an `init` request against the engine's capabilities and apply defaults.
 * @param model the catalogue entry: a model with its own `language` (e.g. `slng/deepgram/nova:3-hi`)
 *   is refused when the engine lacks it ({@link modelLanguageRefusal}) and is the default language.
 * @throws VoxgateError `config_error` naming the offending field and the accepted values.
 */
export function resolveInit(req: SttInitRequest, engine: SttEngine, dialect: SttDialect, model?: Pick<SttModelEntry, 'code' | 'language'>): ResolvedInit {
  const caps = engine.capabilities;
  const refusal = model ? modelLanguageRefusal(model, engine) : null;
  if (refusal) throw refusal;
  const language = (req.language ?? defaultLanguage(model)).toLowerCase().split(/[-_]/)[0]!;
  if (!caps.languages.includes(language)) {
    throw new VoxgateError('config_error', `unsupported language "${req.language}"; this model supports: ${caps.languages.join(', ')}`);
  }
  // Raw encodings plus compressed containers (Ogg/WebM Opus, MP3, FLAC, AAC/MP4) and `auto`
  // (container sniffed from the first bytes; Deepgram's "omit encoding for containerised audio").
  const encoding = normalizeEncoding(req.encoding ?? 'linear16');
  if (!encoding) {
    throw new VoxgateError('config_error', `unknown encoding "${req.encoding}"; supported: ${[...RAW_ENCODINGS, ...COMPRESSED_STREAM_ENCODINGS].join(', ')}`);
  }
  // A container carries its own rate; `sample_rate` only describes raw audio.
  const sampleRate = req.sampleRate ?? (encoding === 'linear16' || !isRawEncoding(encoding) ? 16000 : 8000);
  if (isRawEncoding(encoding) && !(STREAM_SAMPLE_RATES as readonly number[]).includes(sampleRate)) {
    throw new VoxgateError('config_error', `unsupported sample_rate ${sampleRate}; supported: ${STREAM_SAMPLE_RATES.join(', ')}`);
  }
  const channels = req.channels ?? 1;
  if (!Number.isInteger(channels) || channels < 1 || channels > 8) {
    throw new VoxgateError('config_error', `unsupported channels ${channels}; supported: 1-8 (downmixed to mono)`);
  }
  const endpointingMs = req.endpointingMs === undefined ? DEFAULT_ENDPOINTING_MS : req.endpointingMs;
  return {
    stream: {
      language,
      partials: (req.partials ?? false) && caps.partials,
      wordTimestamps: (dialect.alwaysWords || (req.wordTimestamps ?? false)) && caps.wordTimestamps,
      vad: req.vad ?? true,
      endpointingMs: caps.endpointing ? endpointingMs : null,
      ...(req.diarize ? { diarize: checkDiarizeOptions(req.diarize) } : {}),
    },
    encoding,
    sampleRate,
    channels,
    vadEvents: req.vadEvents ?? false,
    multichannel: (req.multichannel ?? false) && channels > 1,
    utteranceEndMs: req.utteranceEndMs ?? null,
    format: req.format,
    replies: req.replies,
  };
}

/** One client connection on a streaming STT route. Drive it with `handleText`/`handleBinary`/`handleTransportClose`. */
export class SttSession extends SessionCore<Exclude<SttSessionState, 'closed'>> {
  private info: SessionInfo | null = null;
  /** The engine stream(s): one per transcript channel (one unless multichannel). */
  private stream: ChannelFanout | null = null;
  /** Client bytes → PCM (raw in-process; compressed through ffmpeg / WASM). */
  private decoder: PcmDecoder | null = null;
  private readonly pending: ClientCommand[] = [];
  private readonly sha: Hash = createHash('sha256');
  private pausedTimer: NodeJS.Timeout | null = null;
  /** Utterance-end tracking (Deepgram `UtteranceEnd`, §2.4): end (s) of the last final word not yet reported. */
  private ueLastWordEnd: (number | null)[] = [];
  private ueMs: number | null = null;
  /** The engine stream settings once started (shutdown needs to know whether endpointing is on). */
  private resolvedStream: SttStreamConfig | null = null;
  private readonly idleSeconds: number;
  /** Engine results (partials, finals, speech starts) received: progress evidence while draining. */
  private engineEvents = 0;
  /** The server is ending the session (limit or shutdown): in-flight client frames are expected. */
  private serverEnding = false;
  /** Audio bytes that arrived after a server-initiated ending began (not transcribed). */
  private lateAudioBytes = 0;
  /** Shutdown drain state ({@link drain}); null when no drain was asked. */
  private shutdown: {
    cutTimer: NodeJS.Timeout;
    deadlineTimer: NodeJS.Timeout;
    cutDue: boolean;
    /** Per channel: onset (s) of the utterance in progress when the drain began streaming, or null; set by windDown(). */
    awaiting: (number | null)[] | null;
  } | null = null;
  /** Per transcript channel: `speech_started` timestamp (s) and end of the last final (s), to see an utterance in progress. */
  private speechStartAt: number[] = [];
  private finalEndAt: number[] = [];

  constructor(private readonly o: SttSessionOptions) {
    super('awaiting_init', { idPrefix: 'sess_', requestId: o.requestId, log: o.log, modelCode: o.model.code, maxSessionSeconds: o.limits.maxSessionSeconds });
    this.idleSeconds = o.dialect.idleTimeoutSeconds ?? o.limits.idleTimeoutSeconds;
    if (o.init) void this.start(o.init);
    else this.armIdleTimer(o.limits.initTimeoutSeconds);
  }

  /** Current lifecycle state. */
  get state(): SttSessionState {
    return this.st;
  }

  /** Seconds of engine-rate audio received so far. */
  get audioSeconds(): number {
    return this.stream?.audioSeconds ?? 0;
  }

  /**
   * Handle one text frame. Never throws. Text frames may carry base64 audio, so their limit is the
   * binary frame limit scaled by 4/3 (base64 expansion) plus room for the JSON envelope.
   */
  handleText(text: string): void {
    if (this.st === 'closed') return;
    this.touch();
    const limit = Math.ceil((this.o.limits.maxFrameBytes * 4) / 3) + 1024;
    const refused = this.textRefusal(text, { maxChars: limit, maxJsonDepth: this.o.limits.maxJsonDepth, maxJsonTokens: this.o.limits.maxJsonTokens });
    if (refused) {
      this.sendError(refused.code, refused.message);
      return;
    }
    this.dispatch(this.o.dialect.parseText(text));
  }

  /** A text frame that is not valid UTF-8 arrived: `invalid_request` in the dialect's way (issue 14 #8). Never throws. */
  handleInvalidText(): void {
    if (this.st === 'closed') return;
    this.touch();
    this.sendError('invalid_request', 'text frame is not valid UTF-8; the frame was rejected');
  }

  /**
   * A frame over the hard limit (2 × `maxFrameBytes`) arrived: the transport cannot skip it, so the
   * session reports `payload_too_large` in its dialect (an error frame, or 1009 `BIG-0000` on
   * `/v1/listen`) and closes 1009 (issue 14 #8). `limit` in bytes.
   */
  handleOversizedFrame(limit: number): void {
    if (this.st === 'closed') return;
    this.fatal(CloseCode.TOO_BIG, 'payload_too_large', 'payload_too_large', `frame over the ${limit}-byte hard limit (twice limits.maxFrameBytes); the connection is closed`);
  }

  /** Handle one binary frame (audio). Never throws. */
  handleBinary(data: Uint8Array): void {
    if (this.st === 'closed') return;
    this.touch();
    if (this.st === 'awaiting_init') {
      this.fatal(CloseCode.POLICY, 'audio before init', 'invalid_request', 'binary audio received before "init"; send {"type":"init",...} first');
      return;
    }
    if (data.length > this.o.limits.maxFrameBytes) {
      this.sendError('payload_too_large', `frame of ${data.length} bytes exceeds the ${this.o.limits.maxFrameBytes}-byte limit; the frame was rejected`);
      return;
    }
    if (data.length === 0) {
      if (this.o.dialect.emptyBinaryCloses) this.dispatch({ kind: 'close' });
      return;
    }
    this.dispatch({ kind: 'audio', data });
  }

  /**
   * Graceful shutdown (issue #14 item 4): end this session without losing what the client said.
   *
   * - `awaiting_init`: closed 1001 at once (nothing to deliver).
   * - `starting`: the engine start completes first, then as `streaming`.
   * - `streaming`: when an utterance is in progress (VAD saw speech not yet covered by a final) and
   *   endpointing is on, audio keeps being accepted and transcribed until that utterance's endpoint
   *   final, for at most `deadlineMs / 2`; then audio stops being taken (late frames are counted, not
   *   errors), every final for the audio received is delivered, followed by the dialect's closing
   *   messages (the `ended` event: `Metadata` / `is_last`), and the session closes 1001
   *   `server shutting down`.
   * - `draining` (the client's `close` or a limit is already draining): that drain finishes with its own close code.
   * - At `deadlineMs` after the call, a session not yet closed is closed 1001 at once.
   * Idempotent: later calls return the same promise (the first deadline stands).
   * @param deadlineMs milliseconds until the session is closed regardless (≥ 0).
   * @returns a promise resolved when the session is closed; never rejects.
   */
  drain(deadlineMs: number): Promise<void> {
    if (this.st === 'closed' || this.shutdown) return this.closed;
    const cutTimer = setTimeout(() => {
      this.shutdown!.cutDue = true;
      this.cutForShutdown();
    }, Math.max(0, deadlineMs / 2));
    const deadlineTimer = setTimeout(() => this.forceShutdown(), Math.max(0, deadlineMs));
    this.shutdown = { cutTimer, deadlineTimer, cutDue: false, awaiting: null };
    this.log.info({ state: this.st, deadline_ms: deadlineMs }, 'draining for shutdown');
    if (this.st === 'awaiting_init') this.terminate(CloseCode.GOING_AWAY, 'server shutting down');
    else if (this.st === 'streaming') this.windDown();
    // `starting`: start() calls windDown() once streaming; `draining`: already ending.
    return this.closed;
  }

  /**
   * Shutdown: stop now unless an utterance is in progress (the VAD heard speech that no final
   * covers yet) whose endpoint will come. Only the utterances in progress *now* are waited for: one
   * the user begins later does not hold the shutdown (its start is in the flush, the rest is late).
   */
  private windDown(): void {
    if (!this.shutdown || this.st !== 'streaming') return;
    const stream = this.resolvedStream;
    const endpointing = stream !== null && stream.vad && stream.endpointingMs !== null;
    this.shutdown.awaiting ??= this.speechStartAt.map((t, ch) => (t >= (this.finalEndAt[ch] ?? 0) ? t : null));
    if (endpointing && !this.shutdown.cutDue && !this.awaitedUtterancesEnded()) {
      this.log.debug('shutdown: waiting for the utterance in progress to end');
      return; // the final that covers it (see the `final` handler) or the cut timer calls cutForShutdown
    }
    this.cutForShutdown();
  }

  /**
   * Every utterance that was in progress when the shutdown drain began has ended: its final arrived,
   * or the VAD already heard the *next* utterance begin (speech starts are seen as audio is written,
   * finals only once it is decoded: under load, waiting for the final would keep taking audio of the
   * following sentence and grow the backlog the drain must decode).
   */
  private awaitedUtterancesEnded(): boolean {
    const awaiting = this.shutdown?.awaiting ?? [];
    return awaiting.every((onset, ch) => onset === null || (this.finalEndAt[ch] ?? 0) > onset || (this.speechStartAt[ch] ?? -1) > onset);
  }

  /** Shutdown: take no more audio, deliver every final, the closing messages, then close 1001. */
  private cutForShutdown(): void {
    if (this.st !== 'streaming') return;
    this.serverEnding = true;
    void this.closeGracefully(CloseCode.GOING_AWAY, 'server shutting down');
  }

  /** Shutdown deadline: close 1001 now; results still being decoded are lost. */
  private forceShutdown(): void {
    if (this.st === 'closed') return;
    this.log.warn({ state: this.st }, 'shutdown deadline reached: closing without the pending results');
    this.stream?.abort();
    this.decoder?.abort();
    this.terminate(CloseCode.GOING_AWAY, 'server shutting down: drain deadline reached, results not yet decoded are lost');
  }

  /** The client vanished: release everything now. */
  handleTransportClose(): void {
    if (this.st === 'closed') return;
    this.log.debug({ state: this.st }, 'transport closed by client');
    this.stream?.abort();
    this.decoder?.abort();
    this.finish();
  }

  // ---- command dispatch ----

  private dispatch(cmd: ClientCommand): void {
    if (this.st === 'starting' && cmd.kind !== 'invalid' && cmd.kind !== 'keepalive' && cmd.kind !== 'init') {
      this.pending.push(cmd);
      return;
    }
    if (this.dispatchCommon<SttInitRequest>(cmd, 'session already initialised; settings cannot change mid-session (reconnect to re-init)', (init) => void this.start(init))) return;
    switch (cmd.kind) {
      case 'audio':
        if (this.st === 'awaiting_init') {
          this.fatal(CloseCode.POLICY, 'audio before init', 'invalid_request', 'audio received before "init"; send {"type":"init",...} first');
        } else if (this.st === 'draining' && this.serverEnding) {
          // In flight when the server began ending the session: expected, reported in the close reason.
          this.lateAudioBytes += cmd.data.length;
        } else if (this.st === 'draining') {
          this.sendError('invalid_request', 'audio after "close" was rejected; the session is draining');
        } else {
          this.feed(cmd.data);
        }
        return;
      case 'finalize':
        if (this.st === 'awaiting_init') this.sendError('invalid_request', '"finalize" before "init"');
        else if (this.st === 'draining' && this.serverEnding) return; // the server's drain finalizes everything anyway
        else if (this.st === 'draining') this.sendError('invalid_request', '"finalize" after "close" was ignored; the session is draining');
        else this.finalizeStream();
        return;
      case 'close':
        if (this.st === 'awaiting_init') this.terminate(CloseCode.NORMAL, 'closed before init');
        else if (this.st === 'streaming') void this.closeGracefully(CloseCode.NORMAL, 'session closed');
        return;
    }
  }

  private async start(req: SttInitRequest): Promise<void> {
    let init: ResolvedInit;
    try {
      init = resolveInit(req, this.o.engine, this.o.dialect, this.o.model);
    } catch (err) {
      const e = toVoxgateError(err);
      this.fatal(CloseCode.POLICY, e.code, e.code, e.message);
      return;
    }
    this.st = 'starting';
    this.armIdleTimer(this.idleSeconds);
    const nStreams = init.multichannel ? init.channels : 1;
    // Diarization (issue 13; src/engines/stt/diarizing.ts): per channel, by the backend, or embedded.
    const diarization = diarizationMode(this.o.engine.capabilities, init.stream, init.multichannel);
    // An engine that takes the client's encoding as it is gets the bytes untouched (engine contract v2),
    // unless the embedded diarizer needs the decoded PCM.
    const passthrough = nStreams === 1 && diarization !== 'embedded' && (this.o.engine.capabilities.passthroughEncodings ?? []).includes(init.encoding);
    if (passthrough) init.stream.passthrough = { encoding: init.encoding, sampleRate: init.sampleRate, channels: init.channels };
    if (Object.keys(this.o.model.options ?? {}).length > 0) init.stream.modelOptions = this.o.model.options;
    // Created before the engine streams so an ffmpeg child starts while decoders are acquired.
    const decoder = passthrough
      ? createPassthroughDecoder(init.encoding, init.channels, (bytes) => this.stream?.writeEncoded(bytes))
      : createPcmDecoder({
          encoding: init.encoding,
          sampleRate: init.sampleRate,
          channels: init.channels,
          targetRate: this.o.engine.capabilities.inputSampleRate,
          outputChannels: init.multichannel ? 'keep' : 1,
        });
    decoder.on('error', (e) => this.onDecoderError(e));
    this.decoder = decoder;
    const streams: SttStream[] = [];
    try {
      for (let i = 0; i < nStreams; i++) streams.push(await startDiarizedStream(this.o.engine, init.stream, this.o.ctx, diarization, { channel: i, diarizer: this.o.diarizer }));
    } catch (err) {
      for (const s of streams) s.abort();
      const e = toVoxgateError(err);
      if (this.st !== 'starting') return;
      this.fatal(e.closeCode ?? CloseCode.INTERNAL, e.code, e.code, e.message);
      return;
    }
    if (this.st !== 'starting') {
      // The client vanished or a timer ended the session while the decoder was being acquired.
      for (const s of streams) s.abort();
      return;
    }
    const stream = new ChannelFanout(streams);
    this.stream = stream;
    this.ueLastWordEnd = new Array<number | null>(nStreams).fill(null);
    decoder.on('format', ({ channels }) => {
      if (nStreams > 1 && channels !== nStreams) {
        this.onDecoderError(new VoxgateError('invalid_audio', `multichannel session was opened for ${nStreams} channels but the audio has ${channels}`));
      }
    });
    decoder.on('pcm', (pcm) => {
      if (this.st === 'closed') return;
      stream.write(pcm);
      if (!decoder.synchronous) {
        this.applyBackpressure();
        this.checkUtteranceEnd();
      }
    });
    this.info = {
      sessionId: this.id,
      requestId: this.requestId,
      model: this.o.model,
      createdAt: this.createdAt,
      channels: init.channels,
      engine: { id: this.o.engine.id, version: this.o.engine.version ?? 'unknown' },
      vadEvents: init.vadEvents,
      transcriptChannels: nStreams,
      format: init.format,
      replies: init.replies,
    };
    this.ueMs = init.utteranceEndMs;
    this.resolvedStream = init.stream;
    this.speechStartAt = new Array<number>(nStreams).fill(-1);
    this.finalEndAt = new Array<number>(nStreams).fill(0);
    const info = this.info;
    stream.on('partial', (result, channel) => {
      this.engineEvents++;
      if (result.transcript) this.ueLastWordEnd[channel] = null; // speech resumed before the gap elapsed
      this.emit({ kind: 'partial', info, channel, result });
    });
    stream.on('final', (result, channel) => {
      this.engineEvents++;
      this.o.observer?.final(result.fromFinalize ? 'finalize' : result.speechFinal ? 'endpoint' : 'other');
      this.emit({ kind: 'final', info, channel, result });
      this.finalEndAt[channel] = Math.max(this.finalEndAt[channel] ?? 0, result.start + result.duration);
      if (this.shutdown?.awaiting && this.st === 'streaming' && this.awaitedUtterancesEnded()) queueMicrotask(() => this.cutForShutdown());
      if (this.ueMs !== null && result.transcript) {
        const ends = (result.words ?? []).map((w) => w.end);
        this.ueLastWordEnd[channel] = ends.length > 0 ? Math.max(...ends) : result.start + result.duration;
        this.checkUtteranceEnd();
      }
    });
    stream.on('speech_started', ({ timestamp }, channel) => {
      this.engineEvents++;
      this.speechStartAt[channel] = timestamp;
      this.emit({ kind: 'speech_started', info, channel, timestamp });
      // Deferred: this runs inside the engine's write(), which the cut's decoder.end() must not re-enter.
      if (this.shutdown?.awaiting && this.st === 'streaming' && this.awaitedUtterancesEnded()) queueMicrotask(() => this.cutForShutdown());
    });
    stream.on('error', (err) => {
      // The engine's own code reaches the client (issue 10: `backend_connection_failed` from failover,
      // an upstream's auth/config refusal); anything uncoded is the engine failing (`internal_error`).
      const e = toVoxgateError(err);
      this.log.error({ err, code: e.code }, 'engine stream failed');
      if (e.code === 'internal_error' || e.code === 'provider_error') this.fatal(CloseCode.INTERNAL, 'engine error', e.code, `speech engine failed: ${e.message}`);
      else this.fatal(e.closeCode ?? CloseCode.INTERNAL, e.code, e.code, e.message);
    });
    this.st = 'streaming';
    this.log.info({ encoding: init.encoding, sample_rate: init.sampleRate, channels: init.channels, ...init.stream }, 'session ready');
    this.emit({ kind: 'ready', info });
    for (const cmd of this.pending.splice(0)) {
      if (this.st !== 'streaming') break;
      this.dispatch(cmd);
    }
    if (this.shutdown) this.windDown(); // a shutdown drain was asked while the engine was starting
  }

  private feed(bytes: Uint8Array): void {
    this.sha.update(bytes);
    try {
      // Raw audio: PCM reaches the engine inside write(); compressed: via the decoder's `pcm` event.
      this.decoder!.write(bytes);
    } catch (err) {
      const e = toVoxgateError(err);
      this.sendError(e.code, e.message);
      return;
    }
    this.applyBackpressure();
    this.checkUtteranceEnd();
  }

  /**
   * Emit `utterance_end` once the decoded audio passes the last final word's end by `utteranceEndMs`
   * (audio time, not wall time, so it is exact for faster-than-real-time input too).
   */
  private checkUtteranceEnd(): void {
    if (this.ueMs === null || !this.stream || !this.info) return;
    const decoded = this.stream.audioSeconds - this.stream.backlogSeconds;
    this.ueLastWordEnd.forEach((lastWordEnd, channel) => {
      if (lastWordEnd !== null && decoded * 1000 >= lastWordEnd * 1000 + this.ueMs!) {
        this.ueLastWordEnd[channel] = null;
        this.emit({ kind: 'utterance_end', info: this.info!, channel, lastWordEnd });
      }
    });
  }

  /** `finalize`: a compressed stream's decoder is flushed first, so the final covers the audio sent before it. */
  private finalizeStream(): void {
    const decoder = this.decoder!;
    const stream = this.stream!;
    if (decoder.synchronous) {
      stream.finalize();
      return;
    }
    void decoder.flush().then(() => {
      if (this.st === 'streaming' || this.st === 'draining') stream.finalize();
    });
  }

  /** The audio cannot be decoded (or ffmpeg cannot run): error frame, then close 1008 (1011 for internal). */
  private onDecoderError(e: VoxgateError): void {
    if (this.st === 'closed') return;
    this.log.info({ code: e.code, backend: this.decoder?.backend }, `decoder failed: ${e.message}`);
    this.fatal(e.closeCode ?? CloseCode.POLICY, e.code, e.code, e.message);
  }

  /**
   * A client may send faster than the engine decodes. Past {@link BACKPRESSURE_HIGH_SECONDS} of
   * backlog the socket is paused (TCP flow control slows the client) until the backlog falls
   * below {@link BACKPRESSURE_LOW_SECONDS}; memory per session stays bounded and nothing is dropped.
   */
  private applyBackpressure(): void {
    const t = this.o.transport;
    if (this.pausedTimer || !t.pause || !t.resume || !this.stream) return;
    if (this.stream.backlogSeconds < BACKPRESSURE_HIGH_SECONDS && !this.decoder?.needsDrain) return;
    t.pause();
    this.o.observer?.backpressure();
    this.log.debug({ backlog_s: this.stream!.backlogSeconds }, 'backpressure: paused reading');
    this.pausedTimer = setInterval(() => {
      if (this.st === 'closed' || ((this.stream?.backlogSeconds ?? 0) < BACKPRESSURE_LOW_SECONDS && !this.decoder?.needsDrain)) this.resumeReading();
    }, 20);
  }

  private resumeReading(): void {
    if (!this.pausedTimer) return;
    clearInterval(this.pausedTimer);
    this.pausedTimer = null;
    this.o.transport.resume?.();
  }

  /** Deliver every final for audio already received, the dialect's closing messages (`ended`), then close. */
  private async closeGracefully(code: number, reason: string): Promise<void> {
    if (this.st !== 'streaming') return;
    this.st = 'draining';
    this.clearIdle();
    const stream = this.stream!;
    try {
      await this.decoder!.end(); // every sample of the audio received reaches the engine
    } catch {
      return; // the decoder's `error` event already ended the session
    }
    if (this.st !== 'draining') return;
    const stalledFor = await this.drainOrStall(stream);
    if (this.st !== 'draining') return;
    if (stalledFor !== null) {
      this.log.error({ stalled_s: stalledFor }, 'engine stalled while draining');
      this.fatal(CloseCode.INTERNAL, 'engine error', 'internal_error', `speech engine failed: no result for ${stalledFor} s while finishing the session`);
      return;
    }
    this.checkUtteranceEnd();
    this.emit({ kind: 'ended', info: this.info!, audioSeconds: stream.audioSeconds, sha256: this.sha.copy().digest('hex') });
    if (this.lateAudioBytes > 0) {
      this.log.info({ late_audio_bytes: this.lateAudioBytes }, 'audio received after the session began ending was not transcribed');
      // Our own reasons carry the count; dialect close reasons (Deepgram `NET-0001` …) stay as specified.
      if (!this.o.dialect.closeFor || code === CloseCode.GOING_AWAY) reason = `${reason}; ${this.lateAudioBytes} audio bytes sent after that were not transcribed`;
    }
    this.terminate(code, reason);
  }

  /**
   * Close the engine stream and wait for its drain. Resolves null once drained, or with the silence
   * (seconds) after which the engine was found stalled: no result and no backlog decoded for
   * max(idle timeout, {@link DRAIN_STALL_MIN_SECONDS}) seconds.
   */
  private drainOrStall(stream: ChannelFanout): Promise<number | null> {
    const limit = Math.max(this.idleSeconds, DRAIN_STALL_MIN_SECONDS);
    return new Promise((resolve) => {
      let last = { events: this.engineEvents, backlog: stream.backlogSeconds };
      const timer = setInterval(() => {
        const now = { events: this.engineEvents, backlog: stream.backlogSeconds };
        if (now.events === last.events && now.backlog >= last.backlog) {
          clearInterval(timer);
          resolve(limit);
        }
        last = now;
      }, limit * 1000);
      timer.unref();
      void stream.close().then(() => {
        clearInterval(timer);
        resolve(null);
      });
    });
  }

  // ---- timers ----

  private touch(): void {
    if (this.st === 'awaiting_init') return; // the init deadline is not extended by chatter
    if (this.st === 'starting' || this.st === 'streaming') this.armIdleTimer(this.idleSeconds);
  }

  /** The `init` deadline (awaiting_init) or idleness (starting/streaming) → `idle_timeout_exceeded`. */
  private armIdleTimer(seconds: number): void {
    this.armIdle(seconds, () => {
      const what = this.st === 'awaiting_init' ? `no valid "init" within ${seconds} s` : `no frames received for ${seconds} s (send {"type":"keepalive"} during silence)`;
      this.expire('idle_timeout_exceeded', what);
    });
  }

  /** `limits.maxSessionSeconds` passed: the session drains (finals for audio received) and closes 1008. */
  protected onMaxDuration(message: string): void {
    this.expire('max_connection_duration_exceeded', message);
  }

  private expire(code: ErrorCode, message: string): void {
    if (this.st === 'closed' || this.st === 'draining') return;
    this.serverEnding = true;
    const dialectClose = this.o.dialect.closeFor?.(code, message);
    if (dialectClose) {
      // No error frame in this dialect: deliver pending finals, then report through the close code.
      this.log.info({ code }, message);
      this.o.observer?.error(code);
      if (this.st === 'streaming') void this.closeGracefully(dialectClose.code, dialectClose.reason);
      else this.terminate(dialectClose.code, dialectClose.reason);
      return;
    }
    this.sendError(code, this.st === 'streaming' ? `${message}; the session is ending: finals for the audio received so far follow, audio sent from now on is not transcribed` : message);
    if (this.st === 'streaming') void this.closeGracefully(CloseCode.POLICY, code);
    else this.terminate(CloseCode.POLICY, code);
  }

  // ---- output ----

  private emit(ev: SessionEvent): void {
    if (this.st === 'closed') return;
    for (const frame of this.o.dialect.encode(ev)) this.o.transport.sendText(frame);
  }

  /**
   * Report an error in the dialect's way: an error frame (the session survives), or — for dialects
   * without error frames — the dialect's close code, ending the session at once.
   */
  protected reportError(code: ErrorCode, message: string): void {
    this.sendError(code, message);
  }

  /** End the session with an error: `close` when given, else 1008 with the code as reason (dialects with close codes pick their own). */
  protected fail(code: ErrorCode, message: string, close?: SessionClose): void {
    this.fatal(close?.code ?? CloseCode.POLICY, close?.reason ?? code, code, message);
  }

  private sendError(code: ErrorCode, message: string): void {
    if (this.st === 'closed') return;
    this.log.info({ code }, message);
    this.o.observer?.error(code);
    const dialectClose = this.o.dialect.closeFor?.(code, message);
    if (dialectClose) {
      this.stream?.abort();
      this.terminate(dialectClose.code, dialectClose.reason);
      return;
    }
    this.emit({ kind: 'error', code, message });
  }

  /** Send an error frame, abort the engine stream and close (dialects with close codes pick their own). */
  private fatal(closeCode: number, reason: string, code: ErrorCode, message: string): void {
    this.sendError(code, message);
    this.stream?.abort();
    this.decoder?.abort();
    this.terminate(closeCode, reason);
  }

  protected closeTransport(code: number, reason: string): void {
    this.o.transport.close(code, reason);
  }

  protected release(): void {
    this.decoder?.abort(); // idempotent: no ffmpeg child outlives its session
    this.resumeReading();
    this.pending.length = 0;
    if (this.shutdown) {
      clearTimeout(this.shutdown.cutTimer);
      clearTimeout(this.shutdown.deadlineTimer);
    }
  }

  protected notifyClosed(): void {
    this.o.onClosed?.(this);
  }
}
