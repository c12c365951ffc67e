/**
 * Pre-recorded (file) transcription as a stream, with bounded memory for files of any length
 * (issue #3 "Pre-recorded (HTTP)"; shared/spec/protocols.md §1.7, §2.2):
 *
 *   body chunks ──▶ PcmDecoder (file mode) ──▶ engine stream(s) (VAD, word timestamps, no partials)
 *        ▲                                          │ finals collected per channel
 *        └────── paused while the engine's backlog exceeds {@link BACKLOG_HIGH_SECONDS} ◀┘
 *
 * Backpressure is end to end: the input is only read while the engine keeps up (its
 * `backlogSeconds`) and while ffmpeg's stdin accepts more, so an upload of hours is held in memory
 * as at most ~{@link BACKLOG_HIGH_SECONDS} s of PCM per channel plus the pipe buffers. The body is
 * pulled from an async iterable (an `IncomingMessage`, a multipart file stream, a fetched URL), so
 * pausing the loop pauses the socket (TCP flow control slows the client).
 *
 * One engine stream per transcript channel: one (downmixed) unless `multichannel`, then one per
 * channel of the audio (learned from the decoded stream). Aborting (client gone) kills ffmpeg and
 * aborts the engine streams at once, returning their decoders to the pool.
 */
import type { RequestContext } from '../engines/context.js';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { createPcmDecoder, type PcmDecoder } from '../audio/decoder.js';
import type { SttEngine, SttFinal, SttStream } from '../engines/stt/types.js';
import { DEFAULT_ENDPOINTING_MS } from '../session/stt_session.js';
import { ParallelLanes } from './lanes.js';
import { VoxgateError, toVoxgateError } from '../util/errors.js';
import type { Diarizer, DiarizeOptions } from '../diarize/types.js';
import { defaultDiarizer } from '../engines/stt/diarizing.js';
import { labelByChannel, labelByTurns, withSegmentSpeaker } from './speakers.js';

/** Engine backlog (s of undecoded audio, worst channel) above which the input is not read. */
export const BACKLOG_HIGH_SECONDS = 20;
/** Backlog below which reading resumes. */
export const BACKLOG_LOW_SECONDS = 10;

/** Options of {@link transcribeFile}. */
export interface TranscribeOptions {
  engine: SttEngine;
  /**
   * The file's bytes in order (any chunking): a request body, a multipart file stream, a fetched
   * response. It is read only as fast as the engine keeps up, and is never destroyed here — on an
   * early failure (413, bad audio) it is simply left unread, so the caller can still answer.
   */
  input: Readable;
  /** Declared encoding: `auto` (sniffed container) or any `createPcmDecoder` encoding. */
  encoding: string;
  /** Hz of raw input (raw encodings only). */
  sampleRate?: number;
  /** Channels of raw input (raw encodings only; default 1). */
  channels?: number;
  /** Transcribe each channel of the audio separately (Deepgram `multichannel=true`). */
  multichannel: boolean;
  /** ISO-639-1 language, already validated against the engine. */
  language: string;
  /** Bytes accepted before the upload is refused with `payload_too_large` (HTTP 413). */
  maxBytes: number;
  /**
   * Engine streams decoding one mono file in parallel, on segments cut at pauses (see lanes.ts).
   * Default 1. Fewer are used when the engine is near its stream limit.
   */
  parallel?: number;
  /** Aborts the transcription (client disconnected): everything is released, the promise rejects. */
  signal?: AbortSignal;
  /** Request context passed to every `engine.start()` (src/engines/context.ts); absent = none. */
  ctx?: RequestContext;
  /**
   * Diarize (issue 13; Deepgram `diarize=true`): present = on, with the speaker-count hints. Words and
   * finals get speakers (src/transcribe/speakers.ts): per channel when `multichannel`; by the engine
   * when its capabilities say `diarization`; else by the embedded {@link diarizer}'s offline
   * `diarize()` over the whole file — which keeps the decoded mono PCM of the file in memory
   * (32 KB per second of audio at 16 kHz) until the transcription ends.
   */
  diarize?: DiarizeOptions;
  /** The embedded diarizer (default: src/engines/stt/diarizing.ts `defaultDiarizer`). */
  diarizer?: Diarizer;
}

/** The finals of one transcript channel, in time order; each has `words`. */
export interface ChannelTranscript {
  finals: SttFinal[];
}

/** Result of {@link transcribeFile}. */
export interface FileTranscription {
  /** One entry per transcript channel (1 unless multichannel). */
  channels: ChannelTranscript[];
  /** Channels in the decoded audio. */
  audioChannels: number;
  /** Seconds of audio (per channel). */
  durationSeconds: number;
  /** SHA-256 (hex) of the bytes received. */
  sha256: string;
  /** Bytes received. */
  inputBytes: number;
  /** Which decoder did the work (`raw`, `ffmpeg`, `ffmpeg-spooled`, `mpg123`). */
  decoder: string;
}

/**
 * Transcribe one file as a stream.
 * @throws VoxgateError `payload_too_large` (413) past `maxBytes`; `invalid_audio` (400) for undecodable,
 *   truncated or empty audio; `invalid_request` (400) for raw data that does not fit its declared
 *   format; `rate_limit` (429) when the engine has no free decoder; `config_error` (400) for an unknown
 *   encoding; `internal_error` when the engine fails. Rejects with the abort reason when `signal` aborts.
 */
export async function transcribeFile(o: TranscribeOptions): Promise<FileTranscription> {
  o.signal?.throwIfAborted();
  const rate = o.engine.capabilities.inputSampleRate;
  const decoder = createPcmDecoder({
    encoding: o.encoding,
    sampleRate: o.sampleRate,
    channels: o.channels,
    targetRate: rate,
    outputChannels: o.multichannel ? 'keep' : 1,
    mode: 'file',
  });
  const run = new Run(o, decoder);
  try {
    return await run.go();
  } finally {
    run.release();
  }
}

/** The state of one transcription (internal). */
class Run {
  /** Multichannel: one stream per channel. */
  private streams: SttStream[] | null = null;
  /** Mono: one or more lanes over one file. */
  private lanes: ParallelLanes | null = null;
  private starting: Promise<void> | null = null;
  private readonly queued: Int16Array[] = [];
  private queuedSamples = 0;
  private failure: VoxgateError | null = null;
  private readonly finals: SttFinal[][] = [];
  private readonly sha = createHash('sha256');
  private bytes = 0;
  private samplesPerChannel = 0;
  private wake: (() => void) | null = null;
  private released = false;
  /** Offline diarization: the decoded mono PCM of the whole file (chunks in order); null when not needed. */
  private diarPcm: Int16Array[] | null = null;

  constructor(
    private readonly o: TranscribeOptions,
    private readonly decoder: PcmDecoder,
  ) {
    decoder.on('error', (e) => this.fail(e));
    decoder.on('pcm', (pcm) => this.onPcm(pcm));
    if (o.diarize && !o.multichannel && !o.engine.capabilities.diarization) this.diarPcm = [];
    o.signal?.addEventListener('abort', () => this.fail(new VoxgateError('invalid_request', 'the client disconnected')), { once: true });
  }

  async go(): Promise<FileTranscription> {
    const { o, decoder } = this;
    // The engine stream (a decoder from the pool) is taken only once the first bytes of audio have
    // arrived (issue 14 #2): a client that opens an upload and sends nothing holds no decoder. Mono
    // output needs exactly one stream: it is started before the first byte is decoded (a busy engine
    // fails after reading one chunk, not the whole upload).
    let started = o.multichannel;
    for await (const chunk of this.chunks(o.input)) {
      if (!started) {
        started = true;
        await this.ensureStreams(1, Math.max(1, o.parallel ?? 1));
        this.check();
      }
      this.check();
      this.bytes += chunk.length;
      if (this.bytes > o.maxBytes) {
        throw new VoxgateError('payload_too_large', `the audio exceeds the ${o.maxBytes}-byte limit of this server (config http.maxBodyBytes)`);
      }
      this.sha.update(chunk);
      try {
        decoder.write(chunk);
      } catch (err) {
        throw toVoxgateError(err);
      }
      if (decoder.needsDrain) await Promise.race([once(decoder, 'drain'), this.sleep(1000)]);
      while (!this.failure && this.backlogSeconds() > BACKLOG_HIGH_SECONDS) {
        // Paused: the body is not read; resume once the engine has caught up to the low-water mark.
        while (!this.failure && this.backlogSeconds() > BACKLOG_LOW_SECONDS) await this.sleep(25);
      }
      this.check();
    }
    this.check();
    await decoder.end().catch((err) => this.fail(toVoxgateError(err)));
    this.check();
    if (this.starting) await this.starting;
    this.check();
    if (!this.streams && !this.lanes) {
      throw new VoxgateError('invalid_audio', 'the upload holds no decodable audio');
    }
    const closing = this.lanes ? this.lanes.close() : Promise.all(this.streams!.map((s) => s.close()));
    while (!this.failure) {
      const done = await Promise.race([closing.then(() => true), this.sleep(100).then(() => false)]);
      if (done) break;
    }
    this.check();
    const perChannel = (this.lanes ? [this.lanes.finals] : this.finals).map((finals) => [...finals].sort((a, b) => a.start - b.start));
    return {
      channels: this.speakers(perChannel).map((finals) => ({ finals })),
      audioChannels: decoder.channels,
      durationSeconds: this.samplesPerChannel / this.o.engine.capabilities.inputSampleRate,
      sha256: this.sha.digest('hex'),
      inputBytes: this.bytes,
      decoder: decoder.backend ?? 'none',
    };
  }

  /**
   * Speaker labels for each channel's finals (module docs of src/transcribe/speakers.ts): by channel,
   * by the engine's own labels, or by the embedded diarizer over the whole file.
   */
  private speakers(perChannel: SttFinal[][]): SttFinal[][] {
    const o = this.o;
    if (!o.diarize) return perChannel;
    if (o.multichannel) return perChannel.map((finals, ch) => labelByChannel(finals, ch));
    if (!this.diarPcm) return perChannel.map((finals) => finals.map(withSegmentSpeaker));
    const total = this.diarPcm.reduce((n, c) => n + c.length, 0);
    const pcm = new Int16Array(total);
    let at = 0;
    for (const c of this.diarPcm.splice(0)) {
      pcm.set(c, at);
      at += c.length;
    }
    this.diarPcm = null;
    let turns;
    try {
      turns = (o.diarizer ?? defaultDiarizer()).diarize(pcm, o.engine.capabilities.inputSampleRate, o.diarize);
    } catch (err) {
      throw new VoxgateError('internal_error', `speaker diarization failed: ${(err as Error).message}`);
    }
    return perChannel.map((finals) => labelByTurns(finals, turns));
  }

  /**
   * The readable's chunks, pulled with `read()` so that stopping early leaves the stream intact
   * (an async iterator would destroy it — and with it the socket the error response must use).
   * @throws VoxgateError `invalid_request` when the stream closes before its end (client gone).
   */
  private async *chunks(r: Readable): AsyncGenerator<Uint8Array> {
    r.on('error', () => {}); // seen through `errored`; an unhandled 'error' would crash the process
    for (;;) {
      if (this.failure) return;
      const chunk = r.read() as Uint8Array | string | null;
      if (chunk !== null) {
        yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        continue;
      }
      if (r.readableEnded) return;
      if (r.destroyed || r.errored) throw new VoxgateError('invalid_request', 'the upload was interrupted before its end');
      await new Promise<void>((resolve) => {
        const done = (): void => {
          r.off('readable', done);
          r.off('end', done);
          r.off('error', done);
          r.off('close', done);
          this.wake = null;
          resolve();
        };
        r.on('readable', done);
        r.on('end', done);
        r.on('error', done);
        r.on('close', done);
        this.wake = done;
      });
    }
  }

  /** Kill the decoder and abort engine streams (idempotent; after success it only frees what is left). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.decoder.abort();
    for (const s of this.streams ?? []) s.abort();
    this.lanes?.abort();
    this.queued.length = 0;
    this.diarPcm = null;
  }

  private onPcm(pcm: Int16Array): void {
    if (this.failure) return;
    const channels = this.decoder.channels || 1;
    this.samplesPerChannel += pcm.length / channels;
    this.diarPcm?.push(pcm.slice()); // mono here (offline diarization is never multichannel)
    if (this.streams || this.lanes) {
      this.write(pcm);
      return;
    }
    this.queued.push(pcm);
    this.queuedSamples += pcm.length / channels;
    void this.ensureStreams(this.o.multichannel ? channels : 1);
  }

  private write(pcm: Int16Array): void {
    if (this.lanes) {
      this.lanes.write(pcm);
      return;
    }
    const streams = this.streams!;
    if (streams.length === 1) {
      streams[0]!.write(pcm);
      return;
    }
    const n = streams.length;
    const frames = pcm.length / n;
    for (let c = 0; c < n; c++) {
      const ch = new Int16Array(frames);
      for (let i = 0; i < frames; i++) ch[i] = pcm[i * n + c]!;
      streams[c]!.write(ch);
    }
  }

  /**
   * Start the engine streams once: `n` channels, or (mono, `n` = 1) up to `lanes` parallel lanes —
   * lanes beyond the first are skipped when the engine is at its limit. Queued PCM is written when ready.
   */
  private ensureStreams(n: number, lanes = 1): Promise<void> {
    if (this.starting) return this.starting;
    this.starting = (async () => {
      const started: SttStream[] = [];
      const want = n === 1 ? lanes : n;
      try {
        for (let i = 0; i < want; i++) {
          try {
            started.push(
              await this.o.engine.start(
                {
                  language: this.o.language,
                  partials: false,
                  wordTimestamps: true,
                  vad: true,
                  endpointingMs: DEFAULT_ENDPOINTING_MS,
                  // A backend that diarizes labels the words itself (issue 13 upstream pass-through).
                  ...(this.o.diarize && !this.o.multichannel && this.o.engine.capabilities.diarization ? { diarize: this.o.diarize } : {}),
                },
                this.o.ctx,
              ),
            );
          } catch (err) {
            if (n === 1 && started.length > 0 && toVoxgateError(err).code === 'rate_limit') break; // fewer lanes
            throw err;
          }
        }
      } catch (err) {
        for (const s of started) s.abort();
        this.fail(toVoxgateError(err));
        return;
      }
      if (this.failure || this.released) {
        for (const s of started) s.abort();
        return;
      }
      const onError = (err: Error): void => this.fail(new VoxgateError('internal_error', `speech engine failed: ${err.message}`));
      if (n === 1) {
        this.lanes = new ParallelLanes(started, this.o.engine.capabilities.inputSampleRate, onError);
      } else {
        started.forEach((s, i) => {
          this.finals[i] = [];
          s.on('final', (f) => {
            if (f.transcript || (f.words?.length ?? 0) > 0) this.finals[i]!.push(f);
          });
          s.on('error', onError);
        });
        this.streams = started;
      }
      const q = this.queued.splice(0);
      this.queuedSamples = 0;
      for (const pcm of q) this.write(pcm);
    })();
    return this.starting;
  }

  /** Seconds of audio waiting (worst channel): queued before the streams started + the engine's backlog. */
  private backlogSeconds(): number {
    const rate = this.o.engine.capabilities.inputSampleRate;
    const engine = this.lanes ? this.lanes.backlogSeconds : Math.max(0, ...(this.streams ?? []).map((s) => s.backlogSeconds));
    return this.queuedSamples / rate + engine;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private fail(e: VoxgateError): void {
    if (this.failure) return;
    this.failure = e;
    this.release();
    this.wake?.();
  }

  /** Sleep `ms`, or less if the run fails meanwhile. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }
}
