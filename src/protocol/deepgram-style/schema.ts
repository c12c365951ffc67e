/**
 * zod schemas of the server frames of the SLNG direct-route STT dialect with Deepgram-native
 * responses ("dialect B", shared/spec/protocols.md §1.4; field rules from §2.4).
 */
import { z } from 'zod';

const word = z
  .object({
    word: z.string(),
    start: z.number().min(0),
    end: z.number().min(0),
    confidence: z.number().min(0).max(1),
    punctuated_word: z.string(),
  })
  .strict();

/** `Results` (§1.4 / §2.4): required `type, channel_index, duration, start, channel, metadata`. */
export const resultsSchema = z
  .object({
    type: z.literal('Results'),
    channel_index: z.tuple([z.number().int().min(0), z.number().int().min(1)]),
    duration: z.number().min(0),
    start: z.number().min(0),
    is_final: z.boolean(),
    speech_final: z.boolean(),
    from_finalize: z.boolean(),
    channel: z
      .object({
        alternatives: z
          .array(
            z.object({ transcript: z.string(), confidence: z.number().min(0).max(1), words: z.array(word) }).strict(),
          )
          .length(1),
      })
      .strict(),
    metadata: z
      .object({
        request_id: z.string().uuid(),
        model_info: z.object({ name: z.string(), version: z.string(), arch: z.string() }).strict(),
        model_uuid: z.string().uuid(),
      })
      .strict(),
  })
  .strict();

/** `Metadata` (§1.4): at session open and again at the end with totals. */
export const metadataSchema = z
  .object({
    type: z.literal('Metadata'),
    request_id: z.string().uuid(),
    created: z.string().datetime(),
    duration: z.number().min(0),
    channels: z.number().int().min(1),
    sha256: z.string(),
    transaction_key: z.literal('deprecated'),
  })
  .strict();

/** `SpeechStarted` (§2.4), only when the client asked for voice-activity events. */
export const speechStartedSchema = z
  .object({ type: z.literal('SpeechStarted'), channel: z.tuple([z.number().int(), z.number().int()]), timestamp: z.number().min(0) })
  .strict();

/** `UtteranceEnd` (§2.4): no words for `utterance_end_ms` after `last_word_end` (seconds). */
export const utteranceEndSchema = z
  .object({ type: z.literal('UtteranceEnd'), channel: z.tuple([z.number().int(), z.number().int()]), last_word_end: z.number().min(0) })
  .strict();

/** `Error` (§1.4): capitalised type with SLNG-style `code`/`message`. */
export const errorSchema = z.object({ type: z.literal('Error'), code: z.string().min(1), message: z.string().min(1) }).strict();

/** Any server frame of this dialect. */
export const serverMessageSchema = z.discriminatedUnion('type', [resultsSchema, metadataSchema, speechStartedSchema, utteranceEndSchema, errorSchema]);
export type DeepgramStyleServerMessage = z.infer<typeof serverMessageSchema>;
