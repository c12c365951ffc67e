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
import { TypedEmitter } from './emitter.js';
import { modelPath } from './stt.js';
import { SocketTransport, base64ToBytes, ReadyState, type AuthMode, type SocketError, type WebSocketConstructor } from './transport.js';

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

/** Client events. */
export interface TtsClientEvents {
  [event: string]: unknown[];
  /** The session is ready (`ready` received). */
  open: [];
  /** Every JSON frame, including `audio_chunk` (whose bytes are also emitted as `audio`). */
  message: [TtsServerMessage];
  /** Audio bytes in the session's encoding, in arrival order. */
  audio: [bytes: Uint8Array, info: TtsAudioInfo];
  /** The socket closed; `code` per RFC 6455. */
  close: [code: number, reason: string];
  /** Transport-level failure or an undecodable server frame. */
  error: [SocketError];
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
export class TtsClient extends TypedEmitter<TtsClientEvents> {
  private opened = false;
  private closeCode: number | null = null;

  private constructor(readonly transport: SocketTransport) {
    super();
  }

  /**
   * Open the socket and send `init`. Resolves once `ready` arrives.
   * @throws Error (with `statusCode`/`body` under Node) when the upgrade is refused or the socket
   *   fails; Error `init rejected: <code>: <message>` (property `code`) when `init` is answered
   *   with an `error` (e.g. `config_error` for an unknown voice).
   */
  static async connect(o: TtsClientOptions): Promise<TtsClient> {
    const base = o.url.replace(/\/+$/, '');
    const prefix = o.route === 'bridge' ? '/v1/bridges/unmute/tts/' : '/v1/tts/';
    const transport = await SocketTransport.open({ url: `${base}${prefix}${modelPath(o.model)}`, key: o.key, auth: o.auth, WebSocket: o.WebSocket });
    const c = new TtsClient(transport);
    if (o.onMessage) c.on('message', o.onMessage);
    if (o.onAudio) c.on('audio', o.onAudio);
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: SocketError) => {
        if (!settled) {
          settled = true;
          reject(e);
        } else c.emit('error', e);
      };
      transport.on('error', fail);
      transport.on('open', () => {
        const init: Record<string, unknown> = { type: 'init', model: o.model };
        if (o.voice !== undefined) init.voice = o.voice;
        if (o.config) init.config = o.config;
        transport.sendText(JSON.stringify(init));
      });
      transport.on('binary', (bytes) => c.emit('audio', bytes, { form: 'binary' }));
      transport.on('text', (data) => {
        let msg: TtsServerMessage;
        try {
          msg = JSON.parse(data) as TtsServerMessage;
        } catch {
          fail(new Error(`server sent a text frame that is not JSON: ${data.slice(0, 80)}`));
          return;
        }
        if (!c.opened && msg.type === 'ready') {
          c.opened = true;
          settled = true;
          resolve(c);
          c.emit('open');
        }
        c.emit('message', msg);
        if (msg.type === 'audio_chunk') {
          let bytes: Uint8Array;
          try {
            bytes = base64ToBytes(msg.data);
          } catch {
            fail(new Error(`audio_chunk ${msg.sequence ?? ''} has invalid base64 data`));
            return;
          }
          c.emit('audio', bytes, { form: 'base64', sequence: msg.sequence });
        }
        if (!c.opened && msg.type === 'error') {
          fail(Object.assign(new Error(`init rejected: ${msg.code}: ${msg.message}`), { code: msg.code }));
        }
      });
      transport.on('close', (code, reason) => {
        c.closeCode = code;
        if (!settled) fail(new Error(`connection closed before ready: ${code} ${reason}`.trim()));
        c.emit('close', code, reason);
      });
    });
  }

  /**
   * Send text to synthesise (`{"type":"text","text","flush"}`). The server buffers to sentence or
   * clause boundaries; `flush: true` synthesises everything buffered at once.
   */
  sendText(text: string, flush = false): void {
    this.transport.sendText(JSON.stringify({ type: 'text', text, flush }));
  }

  /** Synthesise and deliver everything buffered; `flushed` follows the last audio. */
  flush(): void {
    this.transport.sendText(JSON.stringify({ type: 'flush' }));
  }

  /**
   * Barge-in: drop queued text and audio; the session stays open. No audio from before the clear
   * arrives after `cleared`.
   */
  clear(): void {
    this.transport.sendText(JSON.stringify({ type: 'clear' }));
  }

  /** Cancel the current generation (§1.5 `cancel`). */
  cancel(): void {
    this.transport.sendText(JSON.stringify({ type: 'cancel' }));
  }

  /** Keep the session alive while idle. */
  keepAlive(): void {
    this.transport.sendText(JSON.stringify({ type: 'keepalive' }));
  }

  /**
   * End the session (`close`); resolves with the close code once the server closes, or after
   * `timeoutMs` (ms) when the client closes the socket itself.
   */
  close(timeoutMs = 10_000): Promise<number> {
    return new Promise((resolve) => {
      if (this.closeCode !== null || this.transport.socket.readyState === ReadyState.CLOSED) return resolve(this.closeCode ?? 1006);
      const t = setTimeout(() => this.transport.close(1000, 'client timeout waiting for close'), timeoutMs);
      this.once('close', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      if (this.transport.isOpen) this.transport.sendText(JSON.stringify({ type: 'close' }));
    });
  }

  /** Close the socket at once. */
  abort(): void {
    this.transport.close(1000, 'client abort');
  }

  /** True while the socket is open. */
  get isOpen(): boolean {
    return this.transport.isOpen;
  }
}
