/**
 * The `dual` STT dialect: both SLNG server-message families on one route, so the two kinds of seed
 * client of `/v1/stt/slng/deepgram/nova:3-en` (and the other `slng/deepgram/*`, `deepgram/*` seed
 * codes) work unchanged (issue 10 part 2 "Catalogue"; shared/spec/protocols.md §1.3, §1.4; design,
 * evidence and trade-offs in docs/stt.md "Seed model codes: one route, both seed clients").
 *
 * - Client frames: SLNG `init`, binary audio, `finalize`, `close`, `keepalive` (§1.3 and §1.4 agree),
 *   plus Deepgram's `KeepAlive`/`Finalize`/`CloseStream` — the deepgram-style parser, unchanged.
 * - Server frames: every event is rendered by the Deepgram-style encoder ({@link encodeDeepgramStyle},
 *   §1.4, itself built on the shared Deepgram module src/protocol/deepgram/shape.ts) AND by the
 *   unified encoder ({@link encodeUnified}, §1.3). Nothing is re-implemented here:
 *   open → `Metadata` + `ready`; interim → `Results` (`is_final:false`) + `partial_transcript`;
 *   final → `Results` + `final_transcript`; `SpeechStarted`/`UtteranceEnd` (Deepgram only: the
 *   unified family has none); error → `Error` + `error` (same SLNG code and message); end → `Metadata`.
 *   A client reading one family finds each of its messages exactly once and skips the other
 *   family's types, as the SLNG clients do with types they do not know (LiveKit ignores `Metadata`,
 *   `SpeechStarted`, `UtteranceEnd`, `ready`, §1.4/§1.5; PipeCat logs unknown types and goes on).
 * - Narrowing: a client that reads BOTH families (the LiveKit SLNG plugin turns `Results` into
 *   transcripts and also reads `final_transcript`, so it would see every result twice) gets one
 *   family: LiveKit's plugin is recognised by its `init` ({@link isLiveKitInit}) and answered
 *   Deepgram-style; any client may send `init.config.dialect` = `"deepgram-style"` or `"unified"`;
 *   `"dual"` (or no key) keeps both. Errors before `init` is accepted are always sent in both forms.
 *
 * Within one event the Deepgram frame comes first, then the unified one. Finals always carry words
 * (`Results` requires `words`), so `final_transcript` carries `words` too (optional in §1.3, read by
 * LiveKit). Pure: no I/O.
 */
import type { ClientCommand, DualReplies, SessionEvent, SttDialect } from '../events.js';
import { encodeUnified } from '../unified/index.js';
import { deepgramStyleDialect, encodeDeepgramStyle } from '../deepgram-style/index.js';
import type { UnifiedServerMessage } from '../unified/schema.js';
import type { DeepgramStyleServerMessage } from '../deepgram-style/schema.js';

/** A frame of the dual dialect: one of either family. */
export type DualServerMessage = DeepgramStyleServerMessage | UnifiedServerMessage;

/** Values of `init.config.dialect` on a dual route. */
export const DUAL_DIALECT_CHOICES = ['dual', 'unified', 'deepgram-style'] as const;

/**
 * Encode one event (pure): the Deepgram-style frames followed by the unified frames, or only the
 * family the session was narrowed to (`info.replies`). Events without session info (errors before
 * or at `init`) are always sent in both forms.
 */
export function encodeDual(ev: SessionEvent): DualServerMessage[] {
  const replies = 'info' in ev ? ev.info.replies : undefined;
  if (replies === 'unified') return encodeUnified(ev);
  if (replies === 'deepgram-style') return encodeDeepgramStyle(ev);
  return [...encodeDeepgramStyle(ev), ...encodeUnified(ev)];
}

/**
 * True for the `init` config of the LiveKit SLNG plugin (livekit-plugins-slng `build_stt_init_payload`:
 * it always sends `enable_partial_transcripts` next to `enable_partials`, and its VAD keys
 * `vad_speech_pad_ms` / `vad_min_silence_duration_ms`, protocols.md §1.3 "extra config keys", S6). That
 * client reads BOTH families (it turns `Results` into transcripts and also reads `final_transcript`)
 * and raises only on `Error`, so it is answered in the Deepgram-style family alone — the shape SLNG's
 * current docs give these routes (§1.4) — and sees every result once, unchanged.
 */
export function isLiveKitInit(config: unknown): boolean {
  if (typeof config !== 'object' || config === null) return false;
  const c = config as Record<string, unknown>;
  return 'enable_partial_transcripts' in c && 'vad_speech_pad_ms' in c && 'vad_min_silence_duration_ms' in c;
}

/**
 * Parse one client frame (pure; never throws): the deepgram-style parser, plus `init.config.dialect`
 * ({@link DUAL_DIALECT_CHOICES}) on `init`. Any other value → `config_error` naming the valid ones.
 */
export function parseDual(text: string): ClientCommand {
  const cmd = deepgramStyleDialect.parseText(text);
  if (cmd.kind !== 'init') return cmd;
  const config = (JSON.parse(text) as { config?: unknown }).config; // parsed once already: valid JSON object
  const pick = typeof config === 'object' && config !== null ? (config as { dialect?: unknown }).dialect : undefined;
  if (pick === undefined && isLiveKitInit(config)) return { kind: 'init', init: { ...cmd.init, replies: 'deepgram-style' } };
  if (pick === undefined || pick === 'dual') return cmd;
  if (pick === 'unified' || pick === 'deepgram-style') return { kind: 'init', init: { ...cmd.init, replies: pick satisfies DualReplies } };
  return {
    kind: 'invalid',
    code: 'config_error',
    message: `invalid init config: "dialect" must be one of ${DUAL_DIALECT_CHOICES.join(', ')} (got ${JSON.stringify(pick).slice(0, 40)})`,
  };
}

/** The dual dialect object (catalogue name `dual`). */
export const dualDialect: SttDialect = {
  name: 'dual',
  alwaysWords: true,
  parseText: parseDual,
  encode: (ev) => encodeDual(ev).map((m) => JSON.stringify(m)),
};
