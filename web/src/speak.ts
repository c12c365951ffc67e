/**
 * The Speak panel: text + voice → the gateway's unified TTS WebSocket (protocols.md §1.5) through
 * the project's client SDK (src/client/tts.ts), audio played as it arrives (./player.ts).
 *
 * Session handling: one TTS session per (model, voice, speed); `init` asks for linear16 at the
 * voice's native rate (no resampling) or 24 kHz. Each Speak sends `text` with `flush: true`.
 * Stop (or Escape) sends `clear` (barge-in) and silences playback at once; audio still in flight
 * from before the clear is discarded until `cleared` arrives (the server sends nothing from before
 * the clear after `cleared`). An unused session is closed by the page after 20 s, before the
 * server's idle timeout would.
 */
import { TtsClient, type TtsServerMessage } from '../../src/client/tts.js';
import type { TtsModelInfo, TtsVoiceInfo } from './api.js';
import { describeClose, describeServerError } from './errors.js';
import { PcmPlayer } from './player.js';

const RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000];
const IDLE_CLOSE_MS = 20_000;

/** DOM elements of the panel. */
export interface SpeakElements {
  panel: HTMLElement;
  model: HTMLSelectElement;
  /** Shows the route of the selected model. */
  route: HTMLElement;
  voice: HTMLSelectElement;
  speed: HTMLInputElement;
  speedOut: HTMLOutputElement;
  text: HTMLTextAreaElement;
  speak: HTMLButtonElement;
  stop: HTMLButtonElement;
  error: HTMLElement;
  status: HTMLElement;
  first: HTMLElement;
  bytes: HTMLElement;
  decoded: HTMLElement;
  played: HTMLElement;
}

/** What the panel needs from the page. */
export interface SpeakContext {
  baseUrl: string;
  /** The current API key, or null (the panel then asks for one). */
  key(): string | null;
  /** Explain a failed socket (browsers hide the HTTP status): a key check. */
  diagnose(key: string): Promise<string | null>;
}

/** Controller of the Speak panel. */
export class SpeakPanel {
  private models: TtsModelInfo[] = [];
  private client: TtsClient | null = null;
  private clientSig = '';
  private sampleRate = 24000;
  private readonly player = new PcmPlayer();
  private discarding = false;
  private closingByUs = false;
  /** An `error` frame was shown for the current session (its close adds nothing readable). */
  private sawError = false;
  private sentAt = 0;
  private firstAudioAt: number | null = null;
  private bytes = 0;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private busy = false;
  /** True when the last utterance finished (flushed/audio_end) or was stopped. */
  private doneCurrent = true;

  constructor(
    private readonly el: SpeakElements,
    private readonly ctx: SpeakContext,
  ) {
    el.model.addEventListener('change', () => this.fillVoices());
    el.speed.addEventListener('input', () => (el.speedOut.value = `${Number(el.speed.value).toFixed(1)}×`));
    el.speak.addEventListener('click', () => void this.speak());
    el.stop.addEventListener('click', () => this.stop());
    el.text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        void this.speak();
      }
    });
    el.panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.player.playing) this.stop();
    });
    this.player.onProgress = () => this.render();
    this.render();
  }

  /** Fill the pickers from the catalogue's TTS models. */
  setModels(models: TtsModelInfo[]): void {
    this.models = models;
    this.el.model.replaceChildren(...models.map((m) => option(m.code, m.name)));
    const none = models.length === 0;
    this.el.model.disabled = none;
    this.el.speak.disabled = none;
    if (none) this.setStatus('This gateway lists no text-to-speech models in GET /v1/models, so Speak is unavailable.');
    this.fillVoices();
  }

  private fillVoices(): void {
    const m = this.models.find((x) => x.code === this.el.model.value);
    const sp = m?.speed;
    this.el.speed.disabled = sp === null;
    this.el.speed.min = String(sp ? Math.max(0.5, sp.min) : 0.5);
    this.el.speed.max = String(sp ? Math.min(2, sp.max) : 2);
    if (sp === null) this.el.speed.value = '1';
    this.el.speed.dispatchEvent(new Event('input'));
    this.el.route.textContent = m ? `${m.dialect === 'unified' ? '/v1/tts/' : '/v1/bridges/unmute/tts/'}${m.code} · unified dialect` : '';
    const voices = m?.voices ?? [];
    this.el.voice.replaceChildren(
      ...(voices.length ? voices.map((v) => option(v.id, voiceLabel(v))) : [option('', m ? 'default voice' : '—')]),
    );
    if (m?.defaultVoice && voices.some((v) => v.id === m.defaultVoice)) this.el.voice.value = m.defaultVoice;
    this.el.voice.disabled = voices.length === 0;
  }

  /** Speak the text box's contents (interrupting what is playing). */
  async speak(): Promise<void> {
    if (this.busy) return;
    this.showError(null);
    const key = this.ctx.key();
    if (!key) return this.showError('Enter an API key and press "Use key" first (API key panel above).');
    const text = this.el.text.value.trim();
    if (!text) return this.setStatus('Type something to speak.');
    const model = this.models.find((x) => x.code === this.el.model.value);
    if (!model) return this.showError('No text-to-speech model selected.');
    const voice = model.voices.find((v) => v.id === this.el.voice.value);
    this.busy = true;
    try {
      await this.player.unlock();
      if (this.player.playing || !this.doneCurrent) this.interrupt();
      const client = await this.ensureClient(key, model, voice);
      if (!client) return;
      this.player.reset();
      this.bytes = 0;
      this.firstAudioAt = null;
      this.doneCurrent = false;
      this.sentAt = performance.now();
      client.sendText(text, true);
      this.el.stop.disabled = false;
      this.setStatus('Speaking…');
      this.touch();
      this.render();
    } finally {
      this.busy = false;
    }
  }

  /** Stop: `clear` to the server, silence now. */
  stop(): void {
    this.interrupt();
    this.setStatus('Stopped: sent clear, playback silenced.');
    this.render();
  }

  private interrupt(): void {
    if (this.client?.isOpen) {
      this.client.clear();
      this.discarding = true;
    }
    this.player.stop();
    this.doneCurrent = true;
    this.el.stop.disabled = true;
  }

  private async ensureClient(key: string, model: TtsModelInfo, voice: TtsVoiceInfo | undefined): Promise<TtsClient | null> {
    const speed = Number(this.el.speed.value);
    const sig = `${key}|${model.code}|${voice?.id ?? ''}|${speed}`;
    if (this.client?.isOpen && this.clientSig === sig) return this.client;
    this.dropClient();
    const sampleRate = voice?.sampleRate && RATES.includes(voice.sampleRate) ? voice.sampleRate : 24000;
    this.setStatus('Connecting…');
    let client: TtsClient;
    try {
      client = await TtsClient.connect({
        url: this.ctx.baseUrl,
        model: model.code,
        voice: voice?.id,
        key,
        auth: 'query',
        route: model.dialect === 'unified' || model.dialect === undefined ? 'direct' : 'bridge',
        // No `language`: the voice decides it (and voices carry tags like en-us, not §1.3 codes).
        // `speed` only when changed, so engines that cannot change speed accept the default.
        config: { sample_rate: sampleRate, encoding: 'linear16', ...(speed !== 1 ? { speed } : {}) },
        onMessage: (m) => this.onMessage(m),
        onAudio: (b) => this.onAudio(b),
      });
    } catch (err) {
      const e = err as Error & { code?: string };
      const m = /^init rejected: [^:]+: (.*)$/s.exec(e.message);
      if (e.code && m) this.showError(describeServerError(e.code, m[1]!));
      else this.showError((await this.ctx.diagnose(key)) ?? `Could not open the text-to-speech WebSocket for ${model.code}: ${e.message}`);
      this.setStatus('');
      return null;
    }
    this.client = client;
    this.clientSig = sig;
    this.sampleRate = sampleRate;
    this.discarding = false;
    this.sawError = false;
    client.on('close', (code, reason) => {
      if (this.client === client) this.client = null;
      const byUs = this.closingByUs;
      this.closingByUs = false;
      const text = describeClose(code, reason);
      if (text && !byUs && !this.sawError) this.showError(`Text-to-speech session ended. ${text}`);
      this.el.stop.disabled = !this.player.playing;
    });
    client.on('error', (e) => this.showError(e.message));
    return client;
  }

  private dropClient(): void {
    if (this.client) {
      this.closingByUs = true;
      this.client.abort();
      this.client = null;
    }
  }

  /** Close an unused session before the server's idle timeout does. */
  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (!this.player.playing) this.dropClient();
      else this.touch();
    }, IDLE_CLOSE_MS);
  }

  private onMessage(m: TtsServerMessage): void {
    switch (m.type) {
      case 'cleared':
        this.discarding = false;
        break;
      case 'flushed':
      case 'audio_end':
        if (!this.discarding && !this.doneCurrent) {
          this.doneCurrent = true;
          this.setStatus(`Done: ${this.player.decodedSeconds.toFixed(2)} s of audio${m.type === 'audio_end' && m.duration !== undefined ? ` (server: ${m.duration.toFixed(2)} s)` : ''}.`);
        }
        break;
      case 'error':
        this.sawError = true;
        this.showError(describeServerError(m.code, m.message));
        break;
      default:
        break;
    }
  }

  private onAudio(bytes: Uint8Array): void {
    if (this.discarding) return;
    this.touch();
    if (this.firstAudioAt === null) this.firstAudioAt = performance.now();
    this.bytes += bytes.length;
    this.player.enqueue(bytes, this.sampleRate);
    this.el.stop.disabled = false;
    this.render();
  }

  private render(): void {
    const p = this.player;
    this.el.first.textContent = this.firstAudioAt === null ? '—' : `${Math.round(this.firstAudioAt - this.sentAt)} ms`;
    this.el.bytes.textContent = `${this.bytes.toLocaleString('en')} bytes`;
    this.el.bytes.dataset.bytes = String(this.bytes);
    this.el.decoded.textContent = `${p.decodedSeconds.toFixed(2)} s`;
    this.el.decoded.dataset.seconds = String(p.decodedSeconds);
    this.el.played.textContent = `${p.playedSeconds.toFixed(2)} s`;
    this.el.played.dataset.seconds = String(p.playedSeconds);
    this.el.panel.dataset.playing = String(p.playing);
    if (!p.playing && this.doneCurrent) this.el.stop.disabled = true;
  }

  private setStatus(text: string): void {
    this.el.status.textContent = text;
  }

  private showError(text: string | null): void {
    this.el.error.hidden = text === null;
    this.el.error.textContent = text ?? '';
  }
}

function option(value: string, label: string): HTMLOptionElement {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

function voiceLabel(v: TtsVoiceInfo): string {
  const extra = [v.language, v.sampleRate ? `${v.sampleRate / 1000} kHz` : ''].filter(Boolean).join(', ');
  return `${v.name}${extra ? ` (${extra})` : ''}`;
}
