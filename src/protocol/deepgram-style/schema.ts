/**
 * zod schemas of the server frames of the SLNG direct-route STT dialect with Deepgram-native
 * responses ("dialect B", shared/spec/protocols.md §1.4). `Results`, `SpeechStarted` and
 * `UtteranceEnd` are Deepgram's `/v1/listen` frames (§1.4: "Deepgram v1/listen shapes, see §2"), so
 * their schemas are those of src/protocol/deepgram/schema.ts; `Metadata` and `Error` are SLNG's own.
 */
import { z } from 'zod';
import { listenResultsSchema, listenSpeechStartedSchema, listenUtteranceEndSchema } from '../deepgram/schema.js';

/** `Results` (§1.4 / §2.4): the `/v1/listen` schema. */
export const resultsSchema = listenResultsSchema;

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
export const speechStartedSchema = listenSpeechStartedSchema;

/** `UtteranceEnd` (§2.4): no words for `utterance_end_ms` after `last_word_end` (seconds). */
export const utteranceEndSchema = listenUtteranceEndSchema;

/** `Error` (§1.4): capitalised type with SLNG-style `code`/`message`. */
export const errorSchema = z.object({ type: z.literal('Error'), code: z.string().min(1), message: z.string().min(1) }).strict();

/** Any server frame of this dialect. */
export const serverMessageSchema = z.discriminatedUnion('type', [resultsSchema, metadataSchema, speechStartedSchema, utteranceEndSchema, errorSchema]);
export type DeepgramStyleServerMessage = z.infer<typeof serverMessageSchema>;
