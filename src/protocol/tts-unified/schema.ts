/**
 * zod schemas of the SLNG unified TTS protocol (shared/spec/protocols.md §1.5), both directions.
 * Client schemas drive parsing (open: unknown keys are tolerated, §1.5 "extra keys"); server
 * schemas are strict and document — and let tests verify — every frame voxgate emits.
 */
import { z } from 'zod';

/** `init.config` (§1.5): `sample_rate`, `encoding`, `language`, `speed`; other keys ignored. */
export const ttsInitConfigSchema = z
  .object({
    sample_rate: z.number().int().positive().optional(),
    encoding: z.string().min(1).optional(),
    language: z.string().min(1).optional(),
    speed: z.number().positive().optional(),
    /** voxgate extension: `false` disables real-time pacing of this session's audio. */
    pacing: z.boolean().optional(),
  })
  .loose();

/** Client → server text frames (§1.5 "Client → server"). */
export const ttsClientMessageSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('init'),
      model: z.string().optional(),
      voice: z.string().optional(),
      /** LiveKit sends `language` at the top level too (S6). */
      language: z.string().optional(),
      config: z.unknown().optional(),
    })
    .loose(),
  z.object({ type: z.literal('text'), text: z.string(), flush: z.boolean().optional() }).loose(),
  z.object({ type: z.literal('flush') }).loose(),
  z.object({ type: z.literal('clear') }).loose(),
  z.object({ type: z.literal('cancel') }).loose(),
  z.object({ type: z.literal('close') }).loose(),
  z.object({ type: z.literal('keepalive') }).loose(),
]);

/** Server → client text frames (§1.5 "Server → client"). Binary frames carry raw audio. */
export const ttsServerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), session_id: z.string().min(1) }).strict(),
  z.object({ type: z.literal('audio_chunk'), data: z.string().min(1), sequence: z.number().int().positive() }).strict(),
  z.object({ type: z.literal('segment_start'), segment_id: z.string().min(1) }).strict(),
  z.object({ type: z.literal('segment_end'), segment_id: z.string().min(1) }).strict(),
  z.object({ type: z.literal('flushed') }).strict(),
  z.object({ type: z.literal('cleared') }).strict(),
  z.object({ type: z.literal('audio_end'), duration: z.number().min(0) }).strict(),
  z.object({ type: z.literal('error'), code: z.string().min(1), message: z.string().min(1) }).strict(),
]);

/** A server text frame of this dialect. */
export type TtsUnifiedServerMessage = z.infer<typeof ttsServerMessageSchema>;
