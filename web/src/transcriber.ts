/**
 * One live transcription session over the project's client SDK (src/client/stt.ts) in the SLNG
 * unified dialect (protocols.md §1.3): `init` {linear16, 16 kHz, enable_partials,
 * enable_word_timestamps} → `ready`; audio as binary frames; `partial_transcript` →
 * interim caption; `final_transcript` → appended caption; `error` frames and close codes → a
 * readable message. Models whose direct route speaks another dialect are reached through the
 * unified bridge route (`/v1/bridges/unmute/stt/{model}`).
 */
import { SttClient, type SttServerMessage } from '../../src/client/stt.js';
import type { Captions } from './captions.js';
import { describeClose, describeServerError } from './errors.js';
import { LatencyTracker, type TimedWord } from './latency.js';

/** Rate of the audio this page sends (Hz). */
export const SEND_RATE = 16000;

/** What a run reports back to the page. */
export interface RunCallbacks {
  /** A readable error (server `error` frame or unexpected close). */
  onError(message: string): void;
  /** The session ended (normal or not). */
  onClosed(code: number): void;
  /** Something to refresh in the readouts (latency, counters). */
  onUpdate(): void;
  /** Session id from `ready`. */
  onReady?(sessionId: string): void;
  /** The server announced the end of the session (an error that closes it): stop the audio source. */
  onEnding?(): void;
}

/** Options of {@link TranscriptionRun.start}. */
export interface RunOptions {
  /** Page origin, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  key: string;
  model: { code: string; dialect: string };
  captions: Captions;
  callbacks: RunCallbacks;
}

/** A running transcription session. */
export class TranscriptionRun {
  readonly latency = new LatencyTracker(SEND_RATE);
  private closing = false;
  /** An `error` frame was shown: the close that follows it adds nothing readable. */
  private sawError = false;
  sessionId = '';

  private constructor(
    private readonly client: SttClient,
    private readonly captions: Captions,
    private readonly cb: RunCallbacks,
  ) {}

  /**
   * Connect and send `init`.
   * @throws Error from the SDK (refused upgrade, `init rejected: …`); the caller diagnoses a
   *   refused upgrade with a key check, since the browser hides the HTTP status.
   */
  static async start(o: RunOptions): Promise<TranscriptionRun> {
    let run: TranscriptionRun | null = null;
    const early: SttServerMessage[] = [];
    const onMessage = (m: SttServerMessage) => (run ? run.handle(m) : early.push(m));
    const client = await SttClient.connect({
      url: o.baseUrl,
      model: o.model.code,
      key: o.key,
      auth: 'query',
      route: o.model.dialect === 'unified' ? 'direct' : 'bridge',
      init: { language: 'en', sample_rate: SEND_RATE, encoding: 'linear16', channels: 1, enable_partials: true, enable_word_timestamps: true },
      onMessage,
    });
    const r = (run = new TranscriptionRun(client, o.captions, o.callbacks));
    for (const m of early) r.handle(m);
    client.on('close', (code, reason) => {
      const text = describeClose(code, reason);
      if (text && !r.sawError) r.cb.onError(text);
      r.cb.onClosed(code);
    });
    client.on('error', (e) => r.cb.onError(e.message));
    // The SDK stops sending once the server ends the session (session-ending error frame or close);
    // stop the audio source too (issue #14 item 9).
    client.on('ending', () => {
      if (r.closing) return;
      r.closing = true;
      r.cb.onEnding?.();
    });
    if (client.ending !== null) {
      r.closing = true;
      r.cb.onEnding?.();
    }
    return r;
  }

  /**
   * Send 16 kHz linear16 samples as one binary frame. `capturedAt` (performance.now() ms) is when
   * the chunk's last sample was captured (default: now), for the latency readouts.
   */
  send(pcm: Int16Array, capturedAt = performance.now()): void {
    if (this.closing) return;
    if (this.client.sendAudio(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength))) this.latency.recordSend(pcm.length, capturedAt);
  }

  /** True while the socket is open and `stop` was not called. */
  get active(): boolean {
    return this.client.isOpen && !this.closing;
  }

  /** No more audio: the server delivers the remaining finals, then closes. Resolves with the close code. */
  stop(): Promise<number> {
    this.closing = true;
    return this.client.close(15_000);
  }

  private handle(m: SttServerMessage): void {
    const now = performance.now();
    switch (m.type) {
      case 'ready':
        this.sessionId = m.session_id;
        this.cb.onReady?.(m.session_id);
        break;
      case 'partial_transcript':
        this.latency.onPartial(m.transcript, now);
        this.captions.partial(m.transcript);
        break;
      case 'final_transcript':
        this.latency.onFinal({ ...m, words: m.words as TimedWord[] | undefined }, now);
        this.captions.final(m.transcript, m.words as TimedWord[] | undefined);
        break;
      case 'error':
      case 'Error':
        this.sawError = true;
        this.cb.onError(describeServerError(m.code, m.message));
        break;
      default:
        break;
    }
    this.cb.onUpdate();
  }
}
