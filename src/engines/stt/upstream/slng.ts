/**
 * Engine type `slng`: relays a stream to any server speaking the SLNG unified STT protocol
 * (shared/spec/protocols.md §1.3) — another voxgate acting as an engine worker on
 * `/v1/stt/<model>`, or SLNG's hosted API (`pathPrefix: "/v1/bridges/unmute/stt/"` for its bridge).
 *
 * Wire: `Authorization: Bearer <key>` and `X-Request-Id` on the upgrade; `init` with the stream
 * config (linear16, 16 kHz, mono) and wait for `ready`; binary PCM; `finalize`, `keepalive`, `close`.
 * Results map 1:1: `final_transcript` → `final` (transcript, confidence, words, start, duration,
 * language, `speech_final`, `from_finalize` as sent), `partial_transcript` → `partial`, an optional
 * `speech_started` frame → `speech_started`; `error` → the matching code (§1.3 table; nested `data`
 * form too). Fields the protocol leaves optional are filled as documented on {@link SlngSttStream}.
 */
import { z } from 'zod';
import type { VoxgateConfig } from '../../../config/config.js';
import { listenWordSchema } from '../../../protocol/deepgram/schema.js';
import type { SttStreamConfig } from '../types.js';
import { connectFailed, parseTypedFrame, parseUpstreamSettings, redact, relayWords, upstreamFrameError, upstreamSettingsShape, upstreamFormat, UpstreamSttEngine, UpstreamSttStream, type UpstreamRequest } from './common.js';
import type { VoxgateError } from '../../../util/errors.js';

/** Settings of a `slng` instance (`engines.<id>`), strict. */
export const slngSettingsSchema = z
  .object({
    ...upstreamSettingsShape,
    /**
     * Failover replay pace (× real time); default `null` (no limit): the SLNG unified protocol sets no
     * pace cap and a voxgate worker decodes as fast as it is fed, so a failover's first result comes
     * in ~0.1 s instead of after a paced replay (relay bench: gap p95 93 ms vs 645 ms at 1.25×). Set
     * 1.25 for an SLNG route that relays to Deepgram.
     */
    replayPace: z.number().positive().nullable().default(null),
    /** Path before the model code: `/v1/stt/` (voxgate worker, SLNG direct unified route) or `/v1/bridges/unmute/stt/` (SLNG bridge). */
    pathPrefix: z
      .string()
      .regex(/^\/(?:[A-Za-z0-9._~-]+\/)*$/, 'pathPrefix must start and end with "/"')
      .default('/v1/stt/'),
  })
  .strict();
/** Validated `slng` settings. */
export type SlngSettings = z.output<typeof slngSettingsSchema>;

const num = z.number().finite();
/**
 * A word as unified servers send it (voxgate: word/start/end/confidence; §1.3 does not fix the
 * shape, so `confidence` may be missing — relayed as 0 — and extras such as `punctuated_word` are tolerated).
 */
const upstreamWord = listenWordSchema.extend({ confidence: z.number().min(0).max(1).optional() }).loose();

/** Upstream frames this relay reads (§1.3 required fields; everything else optional, unknown keys kept out). */
const finalFrame = z
  .object({
    type: z.literal('final_transcript'),
    transcript: z.string(),
    confidence: num.optional(),
    language: z.string().optional(),
    start: num.optional(),
    duration: num.optional(),
    speech_final: z.boolean().optional(),
    from_finalize: z.boolean().optional(),
    words: z.array(upstreamWord).optional(),
  })
  .loose();
const partialFrame = z
  .object({ type: z.literal('partial_transcript'), transcript: z.string(), confidence: num.optional(), start: num.optional(), duration: num.optional(), words: z.array(upstreamWord).optional() })
  .loose();
const errorFrame = z
  .object({
    type: z.literal('error'),
    code: z.string().optional(),
    message: z.string().optional(),
    data: z.object({ code: z.string().optional(), message: z.string().optional() }).loose().optional(),
  })
  .loose();
const speechStartedFrame = z.object({ type: z.literal('speech_started'), timestamp: num }).loose();

/** The error of an `error` frame (flat or nested `data`). */
function frameError(json: unknown, secrets: readonly string[]): VoxgateError {
  const e = errorFrame.parse(json);
  return upstreamFrameError(e.code ?? e.data?.code ?? 'provider_error', e.message ?? e.data?.message ?? '', secrets);
}

/**
 * A relayed unified stream. Optional fields the upstream omits are filled so: `start` = end of the
 * previous final, `duration` = 0 (final) or audio written since `start` (partial), `confidence` = 0,
 * `language` = the stream's language, `speech_final`/`from_finalize` = false. `utterance_end` and
 * `ready` are ignored; unknown frame types are ignored (forward compatible); a frame that is not
 * JSON with a `type`, or a known type with wrong fields, is a retryable `provider_error`.
 */
export class SlngSttStream extends UpstreamSttStream {
  protected onText(text: string): void {
    const { type, json } = parseTypedFrame(text);
    switch (type) {
      case 'final_transcript': {
        const f = finalFrame.parse(json);
        const start = f.start ?? this.lastFinalEnd;
        this.emitFinal(
          {
            transcript: f.transcript,
            confidence: f.confidence ?? 0,
            ...(this.config.wordTimestamps ? { words: relayWords(f.words ?? []) } : {}),
            start,
            duration: f.duration ?? 0,
            language: f.language ?? this.config.language,
            speechFinal: f.speech_final ?? false,
          },
          f.from_finalize === true,
        );
        return;
      }
      case 'partial_transcript': {
        const p = partialFrame.parse(json);
        const start = p.start ?? this.lastFinalEnd;
        this.safeEmit('partial', {
          transcript: p.transcript,
          start,
          duration: p.duration ?? Math.max(0, this.audioSeconds - start),
          ...(p.confidence !== undefined ? { confidence: p.confidence } : {}),
          ...(p.words && this.config.wordTimestamps ? { words: relayWords(p.words) } : {}),
        });
        return;
      }
      case 'speech_started':
        this.safeEmit('speech_started', { timestamp: speechStartedFrame.parse(json).timestamp });
        return;
      case 'error':
        this.fail(frameError(json, this.o.secrets));
        return;
      default:
        return; // ready (again), utterance_end, future types
    }
  }
}

/** An engine instance relaying to one unified upstream. */
export class SlngSttEngine extends UpstreamSttEngine {
  constructor(
    id: string,
    private readonly s: SlngSettings,
  ) {
    super(id, s, {
      authScheme: 'Bearer',
      frames: { finalize: '{"type":"finalize"}', close: '{"type":"close"}', keepalive: '{"type":"keepalive"}' },
      createStream: (ws, config, o) => new SlngSttStream(ws, config, o),
    });
  }

  protected request(config: SttStreamConfig, secrets: readonly string[]): UpstreamRequest {
    const u = new URL(this.s.url);
    // Model path with `/` and `:` literal (protocols.md §1.1, S5 `quote(model, safe="/:")`).
    const modelPath = this.s.model
      .split('/')
      .map((seg) => encodeURIComponent(seg).replace(/%3A/gi, ':'))
      .join('/');
    u.pathname = u.pathname.replace(/\/+$/, '') + this.s.pathPrefix + modelPath;
    const fmt = upstreamFormat(config);
    const init = {
      type: 'init',
      config: {
        language: config.language,
        // The client's own format when it passes through (engine contract v2), else 16 kHz linear16.
        sample_rate: fmt.sampleRate,
        encoding: fmt.encoding,
        channels: fmt.channels,
        enable_partials: config.partials,
        enable_vad: config.vad,
        enable_word_timestamps: config.wordTimestamps,
        endpointing: config.endpointingMs ?? false,
        vad_events: config.vad,
      },
    };
    return {
      url: u.toString(),
      handshake: {
        onOpen: (ws) => ws.send(JSON.stringify(init)),
        onText: (text) => {
          let f: { type: string; json: unknown };
          try {
            f = parseTypedFrame(text);
          } catch {
            return connectFailed(`malformed frame before ready: ${redact(text.slice(0, 80), secrets)}`);
          }
          if (f.type === 'ready') return true;
          if (f.type === 'error') {
            try {
              return frameError(f.json, secrets);
            } catch {
              return connectFailed('malformed error frame before ready');
            }
          }
          return false;
        },
      },
    };
  }

}

/**
 * Registry factory of type `slng`.
 * @throws Error naming the instance when `cfg.engines[instanceId]` is invalid or has unknown keys.
 */
export function createSlngSttEngine(cfg: VoxgateConfig, instanceId: string): SlngSttEngine {
  return new SlngSttEngine(instanceId, parseUpstreamSettings(slngSettingsSchema, cfg, instanceId, 'slng'));
}
