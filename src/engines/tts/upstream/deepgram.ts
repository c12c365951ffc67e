/**
 * Engine type `deepgram` (TTS): Deepgram Aura `/v1/speak` as an upstream (shared/spec/protocols.md
 * §3, upstreams.md §1.3; issue 10 part 2). voxgate's own `/v1/speak` is a faithful server for it.
 *
 * `transport: "ws"` (default) — one WebSocket per (voice, speed), configured in the URL
 * `<url>/v1/speak?model=<voice>&encoding=linear16&sample_rate=<Hz>[&speed=<x>]`,
 * `Authorization: Token <key>`; per segment → `{"type":"Speak","text"}` (split at 2000
 * characters, Deepgram's per-message limit), `{"type":"Flush"}`; ← binary linear16 … `Flushed`.
 * `Metadata`, `Cleared` and other `Warning`s are ignored; a `Warning` about the flush rate means the
 * flush was not performed (the segment fails, retryable). Deepgram allows 20 `Flush` per 60 s and
 * 60 minutes per socket, so a connection is reused only while it has flush budget left and is
 * younger than 55 minutes.
 *
 * `transport: "rest"` — `POST <url>/v1/speak?model=…&encoding=linear16&sample_rate=…&container=none`
 * with `{"text"}`; the response body (raw PCM) is streamed as it arrives.
 *
 * Settings (`engines.<id>`, type `deepgram`): `url` (default `wss://api.deepgram.com`; the EU host is
 * `wss://api.eu.deepgram.com`), `apiKeyEnv`, `voices` (default: a few Aura-2 voices at 24 kHz),
 * `sampleRate`, `transport`, `connectTimeoutMs`, `stallTimeoutMs`, `idleConnectionMs`.
 * Speed range 0.7–1.5 (Deepgram's).
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { VoxgateError } from '../../../util/errors.js';
import { abortError } from '../process.js';
import type { TtsCapabilities, TtsEngine, TtsEngineStats, TtsSynthesis, TtsSynthesisRequest, TtsVoice } from '../types.js';
import {
  commonSettingsShape,
  errorBodyDetail,
  httpStatusError,
  networkError,
  parseInstanceSettings,
  PcmAssembler,
  readApiKey,
  redactorFor,
  segmentError,
  toTtsVoices,
  upstreamCapabilities,
  upstreamVoiceSchema,
  withScheme,
  type Redactor,
  type UpstreamConnection,
  type UpstreamEvent,
  type UpstreamWire,
  type UpstreamVoiceSetting,
} from './common.js';
import { WsUpstreamTtsEngine } from './ws_engine.js';

/** Deepgram's `speed` range on `/v1/speak` (protocols.md §3). */
export const DEEPGRAM_SPEED = { min: 0.7, max: 1.5 } as const;
/** Most characters of one `Speak` message (protocols.md §3). */
const SPEAK_MAX = 2000;
/** Flushes Deepgram performs per 60 s on one socket (protocols.md §3). */
const FLUSHES_PER_MINUTE = 20;
/** A socket older than this is not reused (Deepgram closes at 60 minutes). */
const MAX_SOCKET_AGE_MS = 55 * 60_000;

/** Voices offered when the instance lists none: Aura-2 voices at Deepgram's default 24 kHz. */
export const DEFAULT_AURA_VOICES: UpstreamVoiceSetting[] = [
  { id: 'aura-2-thalia-en', name: 'Thalia (Aura-2, US English)', languages: ['en-us', 'en'], gender: 'female', sampleRate: 24000 },
  { id: 'aura-2-andromeda-en', name: 'Andromeda (Aura-2, US English)', languages: ['en-us', 'en'], gender: 'female', sampleRate: 24000 },
  { id: 'aura-2-apollo-en', name: 'Apollo (Aura-2, US English)', languages: ['en-us', 'en'], gender: 'male', sampleRate: 24000 },
  { id: 'aura-2-arcas-en', name: 'Arcas (Aura-2, US English)', languages: ['en-us', 'en'], gender: 'male', sampleRate: 24000 },
  { id: 'aura-2-celeste-es', name: 'Celeste (Aura-2, Spanish)', languages: ['es'], gender: 'female', sampleRate: 24000 },
];

/** zod schema of a `deepgram` TTS instance's settings (unknown keys rejected). */
export const deepgramTtsSettingsSchema = z
  .object({
    ...commonSettingsShape,
    url: commonSettingsShape.url.default('wss://api.deepgram.com'),
    voices: z.array(upstreamVoiceSchema).min(1).default(DEFAULT_AURA_VOICES),
    /** `ws`: streaming WebSocket (default); `rest`: one POST per segment. */
    transport: z.enum(['ws', 'rest']).default('ws'),
  })
  .strict();
/** Validated `deepgram` TTS settings. */
export type DeepgramTtsSettings = z.infer<typeof deepgramTtsSettingsSchema>;

/**
 * The `/v1/speak` URL for a voice (`model`), rate and speed (speed omitted at 1, Deepgram's default).
 * @param family `ws` for the streaming socket, `http` for REST (which also asks `container=none`).
 */
export function deepgramSpeakUrl(base: string, family: 'ws' | 'http', voice: string, sampleRate: number, speed: number): string {
  const u = withScheme(base, family);
  const prefix = u.pathname.replace(/\/+$/, '');
  u.pathname = prefix.endsWith('/v1/speak') ? prefix : `${prefix}/v1/speak`;
  u.searchParams.set('model', voice);
  u.searchParams.set('encoding', 'linear16');
  u.searchParams.set('sample_rate', String(sampleRate));
  if (family === 'http') u.searchParams.set('container', 'none');
  if (speed !== 1) u.searchParams.set('speed', String(speed));
  return u.toString();
}

/** Classify one `/v1/speak` server text frame (§3). */
export function classifySpeakFrame(m: Record<string, unknown>): UpstreamEvent {
  switch (m.type) {
    case 'Flushed':
      return { kind: 'flushed' };
    case 'Warning': {
      const text = `${String(m.code ?? '')} ${String(m.description ?? '')}`;
      return /flush/i.test(text) ? { kind: 'flush_refused', message: text.trim() } : { kind: 'ignore' };
    }
    case 'Error':
    case 'error':
      return { kind: 'error', code: typeof m.code === 'string' ? m.code : typeof m.err_code === 'string' ? m.err_code : undefined, message: String(m.description ?? m.message ?? m.err_msg ?? 'upstream error') };
    default:
      return { kind: 'ignore' }; // Metadata, Cleared, unknown
  }
}

/** The `/v1/speak` wire: no handshake message; Speak (≤ 2000 characters each) + one Flush per segment. */
export const deepgramWire: UpstreamWire = {
  openFrames: [],
  waitReady: false,
  classify: classifySpeakFrame,
  segmentFrames(text) {
    const chars = [...text];
    const frames: string[] = [];
    for (let i = 0; i < chars.length; i += SPEAK_MAX) frames.push(JSON.stringify({ type: 'Speak', text: chars.slice(i, i + SPEAK_MAX).join('') }));
    frames.push(JSON.stringify({ type: 'Flush' }));
    return frames;
  },
};

/** True while a connection may speak another segment: flush budget left in the last minute, and younger than 55 minutes. */
export function deepgramReusable(c: UpstreamConnection, now = performance.now()): boolean {
  const recent = c.flushTimes.filter((t) => now - t < 60_000).length;
  return recent < FLUSHES_PER_MINUTE && now - c.openedAt < MAX_SOCKET_AGE_MS;
}

/** Common engine parts of both transports. */
interface Shared {
  instanceId: string;
  s: DeepgramTtsSettings;
  capabilities: TtsCapabilities;
  upstreamIds: Map<string, string>;
  key(): string | undefined;
  redact(): Redactor;
}

/**
 * `transport: "rest"`: one `POST /v1/speak` per segment, body streamed as PCM.
 * Errors as the WebSocket transport (handshake = until the response headers, within `connectTimeoutMs`;
 * a body that stops for `stallTimeoutMs` or breaks → retryable `provider_error`).
 */
class DeepgramRestTtsEngine implements TtsEngine {
  readonly id: string;
  readonly version = 'deepgram-aura';
  readonly capabilities: TtsCapabilities;
  private ready = false;
  private active = 0;
  private finished = 0;
  private readonly running = new Set<AbortController>();

  constructor(
    private readonly sh: Shared,
    private readonly initFn: () => void,
  ) {
    this.id = sh.instanceId;
    this.capabilities = sh.capabilities;
  }

  async init(): Promise<void> {
    this.initFn();
    this.ready = true;
  }

  synthesize(req: TtsSynthesisRequest, signal?: AbortSignal): TtsSynthesis {
    const id = req.voice.toLowerCase();
    const voice: TtsVoice | undefined = this.capabilities.voices.find((v) => v.id === id);
    const sampleRate = voice?.sampleRate ?? this.capabilities.voices[0]!.sampleRate;
    const self = this;
    const { instanceId, s } = this.sh;
    async function* run(): AsyncGenerator<Int16Array> {
      if (!self.ready) throw new VoxgateError('internal_error', `engine ${instanceId} used before init()`);
      if (!voice) throw new VoxgateError('config_error', `engine ${instanceId} has no voice "${req.voice}"`);
      if (signal?.aborted) throw abortError();
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      self.running.add(ctl);
      self.active++;
      let timedOut = false;
      const connectTimer = setTimeout(() => {
        timedOut = true;
        ctl.abort();
      }, s.connectTimeoutMs);
      try {
        const key = self.sh.key();
        let res: Response;
        try {
          res = await fetch(deepgramSpeakUrl(s.url, 'http', self.sh.upstreamIds.get(voice.id) ?? voice.id, voice.sampleRate, req.speed), {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Token ${key}` } : {}) },
            body: JSON.stringify({ text: req.text }),
            signal: ctl.signal,
          });
        } catch (err) {
          if (signal?.aborted) throw abortError();
          if (timedOut) throw new VoxgateError('backend_connection_failed', `Failed to connect to backend: ${instanceId}: no response within ${s.connectTimeoutMs} ms`, { retryable: true });
          throw networkError(instanceId, err);
        } finally {
          clearTimeout(connectTimer);
        }
        if (res.status !== 200) {
          let body = '';
          try {
            body = (await raceTimeout(res.text(), s.stallTimeoutMs)) ?? '';
          } catch {
            /* the status says enough */
          }
          throw httpStatusError(instanceId, res.status, self.sh.redact()(errorBodyDetail(body)));
        }
        if (!res.body) return;
        const reader = res.body.getReader();
        const pcm = new PcmAssembler();
        try {
          for (;;) {
            let r: ReadableStreamReadResult<Uint8Array> | undefined;
            try {
              r = await raceTimeout(reader.read(), s.stallTimeoutMs);
            } catch (err) {
              if (signal?.aborted) throw abortError();
              throw segmentError(instanceId, `response body failed: ${self.sh.redact()((err as Error).message)}`);
            }
            if (signal?.aborted) throw abortError();
            if (r === undefined) throw segmentError(instanceId, `no audio from upstream for ${s.stallTimeoutMs} ms`);
            if (r.done) return;
            const samples = pcm.push(r.value);
            if (samples.length) yield samples;
          }
        } finally {
          reader.cancel().catch(() => {});
        }
      } finally {
        clearTimeout(connectTimer);
        signal?.removeEventListener('abort', onAbort);
        ctl.abort(); // releases the HTTP socket when the body was not read to its end
        self.running.delete(ctl);
        self.active--;
        self.finished++;
      }
    }
    const it = run();
    return { sampleRate, [Symbol.asyncIterator]: () => it };
  }

  stats(): TtsEngineStats {
    return { activeJobs: this.active, queuedJobs: 0, finishedJobs: this.finished };
  }

  async shutdown(): Promise<void> {
    for (const c of this.running) c.abort();
  }
}

/** `p`'s value, or `undefined` when `ms` pass first. */
function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(t));
}

/**
 * Create a `deepgram` TTS engine for instance `instanceId` of `cfg`.
 * @throws Error `engines.<id> (type deepgram) is invalid: …` for bad or unknown settings.
 */
export function createDeepgramTtsEngine(cfg: VoxgateConfig, instanceId: string): TtsEngine {
  const s = parseInstanceSettings(deepgramTtsSettingsSchema, cfg, instanceId, 'deepgram');
  const voices = toTtsVoices(instanceId, s.voices, s.sampleRate, 24000);
  let key: string | undefined;
  let redact: Redactor = (t) => t;
  const init = () => {
    key = readApiKey(instanceId, s.apiKeyEnv);
    redact = redactorFor(key);
  };
  const sh: Shared = {
    instanceId,
    s,
    capabilities: upstreamCapabilities(voices, { ...DEEPGRAM_SPEED }),
    upstreamIds: new Map(s.voices.map((v) => [v.id.toLowerCase(), v.id])),
    key: () => key,
    redact: () => redact,
  };
  if (s.transport === 'rest') return new DeepgramRestTtsEngine(sh, init);
  return new WsUpstreamTtsEngine({
    instanceId,
    version: 'deepgram-aura',
    capabilities: sh.capabilities,
    connectTimeoutMs: s.connectTimeoutMs,
    stallTimeoutMs: s.stallTimeoutMs,
    idleConnectionMs: s.idleConnectionMs,
    init,
    endpoint: (voice, speed) => ({
      url: deepgramSpeakUrl(s.url, 'ws', sh.upstreamIds.get(voice.id) ?? voice.id, voice.sampleRate, speed),
      headers: key ? { Authorization: `Token ${key}` } : ({} as Record<string, string>),
      wire: deepgramWire,
    }),
    redact: () => redact,
    reusable: (c) => deepgramReusable(c),
  });
}
