/**
 * A client for voxgate's streaming TTS routes in the SLNG unified TTS dialect
 * (shared/spec/protocols.md §1.5): `/v1/tts/{model}` and `/v1/bridges/unmute/tts/{model}`.
 *
 * Isomorphic like {@link SttClient} (./transport.ts): Node over `ws`, browsers over the global
 * `WebSocket` with `?token=`. The browser playground's Speak panel uses it.
 *
 * Client → server: `init` {model, voice, config {sample_rate, encoding, language, speed}} (first),
 * `text` {text, flush}, `flush`, `clear`, `cancel`, `keepalive`, `close`.
 * Server → client: `ready` {session_id}; audio either as `audio_chunk` {data (base64), sequence} or
 * as binary frames — both are accepted and surfaced as one `audio` event of raw bytes in the
 * `init.config.encoding`; `segment_start`/`segment_end` {segment_id}; `flushed`; `cleared`;
 * `audio_end` {duration (s)}; `error` {code, message}.
 */
import { SessionClient, type SessionClientEvents } from './session.js';
import { base64ToBytes, type AuthMode, type WebSocketConstructor } from './transport.js';

/** `init.config` of a TTS session (§1.5). Unknown keys are passed through. */
export interface TtsClientConfig {
  /** Output rate in Hz: 8000, 16000, 22050, 24000, 32000, 44100 or 48000. */
  sample_rate?: number;
  /** Output encoding: `linear16` (16-bit little-endian PCM), `mulaw`, `alaw`, `mp3`, `opus`. */
  encoding?: string;
  language?: string;
  /** Speaking-rate multiplier (1.0 = normal). */
  speed?: number;
  [key: string]: unknown;
}

/** Server → client JSON frames of the unified TTS dialect (§1.5 "Server → client"). */
export type TtsServerMessage =
  | { type: 'ready'; session_id: string }
  | { type: 'audio_chunk'; data: string; sequence?: number }
  | { type: 'segment_start'; segment_id: string }
  | { type: 'segment_end'; segment_id: string }
  | { type: 'flushed' }
  | { type: 'cleared' }
  | { type: 'audio_end'; duration?: number }
  | { type: 'error'; code: string; message: string };

/** Where a piece of audio came from on the wire. */
export interface TtsAudioInfo {
  /** `binary`: a binary WebSocket frame; `base64`: an `audio_chunk` message. */
  form: 'binary' | 'base64';
  /** `audio_chunk.sequence` when present. */
  sequence?: number;
}

/**
 * Client events: `open` (`ready` received), `message` (every JSON frame, including `audio_chunk`,
 * whose bytes are also emitted as `audio`), `close`, `error` (./session.ts), and `audio`.
 */
export interface TtsClientEvents extends SessionClientEvents<TtsServerMessage> {
  /** Audio bytes in the session's encoding, in arrival order. */
  audio: [bytes: Uint8Array, info: TtsAudioInfo];
}

/** Connection options. */
export interface TtsClientOptions {
  /** Base URL, e.g. `ws://127.0.0.1:8080` (http(s):// is accepted and converted). */
  url: string;
  /** Catalogue code of a TTS model, e.g. `local/flite:en`; also sent as `init.model`. */
  model: string;
  /** Voice id from the catalogue; omitted = the model's default voice. */
  voice?: string;
  config?: TtsClientConfig;
  key?: string;
  auth?: AuthMode;
  /** `direct` (default): `/v1/tts/{model}`; `bridge`: `/v1/bridges/unmute/tts/{model}`. */
  route?: 'direct' | 'bridge';
  /** Listener attached before the socket opens (sees `ready` and init errors). */
  onMessage?: (m: TtsServerMessage) => void;
  /** Audio listener attached before the socket opens. */
  onAudio?: (bytes: Uint8Array, info: TtsAudioInfo) => void;
  WebSocket?: WebSocketConstructor;
}

/** A streaming TTS connection. Create with {@link TtsClient.connect}. */
export class TtsClient extends SessionClient<TtsClientEvents, TtsServerMessage> {
  /**
   * Open the socket and send `init`. Resolves once `ready` arrives.
   * @throws Error (with `statusCode`/`body` under Node) when the upgrade is refused or the socket
   *   fails; Error `init rejected: <code>: <message>` (property `code`) when `init` is answered
   *   with an `error` (e.g. `config_error` for an unknown voice).
   */
  static async connect(o: TtsClientOptions): Promise<TtsClient> {
    const c = new TtsClient(await SessionClient.openTransport({ ...o, kind: 'tts' }));
    if (o.onMessage) c.on('message', o.onMessage);
    if (o.onAudio) c.on('audio', o.onAudio);
    c.transport.on('binary', (bytes) => c.emit('audio', bytes, { form: 'binary' }));
    const init: Record<string, unknown> = { type: 'init', model: o.model };
    if (o.voice !== undefined) init.voice = o.voice;
    if (o.config) init.config = o.config;
    return c.handshake({
      init,
      isReady: (m) => m.type === 'ready',
      errorOf: (m) => (m.type === 'error' ? m : null),
      onFrame: (m, fail) => {
        if (m.type !== 'audio_chunk') return;
        let bytes: Uint8Array;
        try {
          bytes = base64ToBytes(m.data);
        } catch {
          fail(new Error(`audio_chunk ${m.sequence ?? ''} has invalid base64 data`));
          return;
        }
        c.emit('audio', bytes, { form: 'base64', sequence: m.sequence });
      },
    });
  }

  /**
   * Send text to synthesise (`{"type":"text","text","flush"}`). The server buffers to sentence or
   * clause boundaries; `flush: true` synthesises everything buffered at once.
   */
  sendText(text: string, flush = false): void {
    this.sendJson({ type: 'text', text, flush });
  }

  /** Synthesise and deliver everything buffered; `flushed` follows the last audio. */
  flush(): void {
    this.sendJson({ type: 'flush' });
  }

  /**
   * Barge-in: drop queued text and audio; the session stays open. No audio from before the clear
   * arrives after `cleared`.
   */
  clear(): void {
    this.sendJson({ type: 'clear' });
  }

  /** Cancel the current generation (§1.5 `cancel`). */
  cancel(): void {
    this.sendJson({ type: 'cancel' });
  }

  /**
   * End the session (`close`); resolves with the close code once the server closes, or after
   * `timeoutMs` (ms) when the client closes the socket itself.
   */
  override close(timeoutMs = 10_000): Promise<number> {
    return super.close(timeoutMs);
  }
}
