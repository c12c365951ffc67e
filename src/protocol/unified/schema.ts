/**
 * zod schemas of the SLNG unified STT protocol (shared/spec/protocols.md §1.3), both directions.
 * The client schemas drive parsing; the server schemas document (and let tests verify) every frame
 * voxgate emits in this dialect.
 */
import { z } from 'zod';

/** `init.config` as sent by clients. Open schema: unknown keys are ignored (§1.3 "extra config keys"). */
export const initConfigSchema = z
  .object({
    language: z.string().min(1).optional(),
    sample_rate: z.number().int().positive().optional(),
    encoding: z.string().min(1).optional(),
    channels: z.number().int().positive().optional(),
    enable_partials: z.boolean().optional(),
    /** Alias sent by the SLNG CLI (S3). */
    enable_partial_transcripts: z.boolean().optional(),
    enable_vad: z.boolean().optional(),
    enable_word_timestamps: z.boolean().optional(),
    /** Milliseconds of trailing silence; `false`/`null` disable endpointing. */
    endpointing: z.union([z.number().int().min(0).max(60_000), z.literal(false), z.null()]).optional(),
    vad_events: z.boolean().optional(),
    /** Model-specific formatting keys (§1.4 examples send `smart_format`). */
    smart_format: z.boolean().optional(),
    punctuate: z.boolean().optional(),
    numerals: z.boolean().optional(),
    /**
     * Diarization (issue 13): `enable_diarization` is the key the LiveKit SLNG plugin sends (S6);
     * `diarize` the one of the §1.4 Hindi example. Either `true` turns it on.
     */
    enable_diarization: z.boolean().optional(),
    diarize: z.boolean().optional(),
    /**
     * Speaker-count hints, flat as LiveKit sends them (`min_speakers`, `max_speakers`, S6) or in the
     * voxgate `diarization` object (which wins key by key). Values are range-checked by
     * src/diarize/hints.ts (integers 1–10, min ≤ num ≤ max); a `diarization` object implies
     * `enable_diarization: true` unless that is explicitly `false`.
     */
    num_speakers: z.unknown().optional(),
    min_speakers: z.unknown().optional(),
    max_speakers: z.unknown().optional(),
    diarization: z
      .object({ num_speakers: z.unknown().optional(), min_speakers: z.unknown().optional(), max_speakers: z.unknown().optional() })
      .strict()
      .optional(),
  })
  .loose();

/** Client → server text frames (§1.3 table "Client → server"). */
export const clientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('init'), config: z.unknown().optional() }).loose(),
  z.object({ type: z.literal('audio'), data: z.string() }).loose(),
  z.object({ type: z.literal('finalize') }).loose(),
  z.object({ type: z.literal('keepalive') }).loose(),
  z.object({ type: z.literal('close') }).loose(),
]);

const word = z
  .object({
    word: z.string(),
    start: z.number().min(0),
    end: z.number().min(0),
    confidence: z.number().min(0).max(1),
    /** Speaker label (integer ≥ 0) when diarizing (issue 13; Deepgram's `speaker`). */
    speaker: z.number().int().min(0).optional(),
    /** Confidence in [0, 1] of `speaker`, when the diarizer gives one. */
    speaker_confidence: z.number().min(0).max(1).optional(),
  })
  .strict();

/** Server → client frames (§1.3 table "Server → client", plus `from_finalize`/`words` per S5/S6). */
export const serverMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), session_id: z.string().min(1) }).strict(),
  z
    .object({
      type: z.literal('partial_transcript'),
      transcript: z.string(),
      confidence: z.number().min(0).max(1).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('final_transcript'),
      transcript: z.string(),
      confidence: z.number().min(0).max(1),
      language: z.string(),
      start: z.number().min(0),
      duration: z.number().min(0),
      speech_final: z.boolean(),
      from_finalize: z.boolean(),
      words: z.array(word).optional(),
      /** The segment's speaker when diarizing (the label of most of its words' time; issue 13). */
      speaker: z.number().int().min(0).optional(),
    })
    .strict(),
  z.object({ type: z.literal('error'), code: z.string().min(1), message: z.string().min(1) }).strict(),
]);

/** A server frame of this dialect. */
export type UnifiedServerMessage = z.infer<typeof serverMessageSchema>;
