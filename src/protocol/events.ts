/**
 * Dialect-neutral messages between a wire dialect and an STT session.
 *
 * Data flows one way — transport → dialect → session → engine — and events flow back:
 * a dialect parses wire frames into {@link ClientCommand}s and encodes {@link SessionEvent}s into
 * wire frames. Dialects are pure (no I/O), so they are unit-tested on recorded message sequences.
 */
import type { SttFinal, SttPartial } from '../engines/stt/types.js';
import type { ErrorCode } from '../util/errors.js';
import type { FormatOptions } from '../text/format.js';
import type { SttModelEntry, SttDialectName } from '../config/config.js';

/**
 * `init` options after dialect parsing, before validation against the engine.
 * Every field is optional; the session applies defaults (protocols.md §1.3 `config.*`).
 */
export interface SttInitRequest {
  /** ISO-639-1 (`en`) or BCP-47 (`en-US`; the session keeps the primary subtag). */
  language?: string;
  /** Hz of the audio the client sends. */
  sampleRate?: number;
  /** Audio encoding name as sent by the client (`linear16`, `mulaw`, `alaw`, …). */
  encoding?: string;
  /** Interleaved channels in the client's audio (downmixed to mono). */
  channels?: number;
  /** Emit interim results. */
  partials?: boolean;
  /** Use VAD endpointing. */
  vad?: boolean;
  /** Include per-word timing in finals. */
  wordTimestamps?: boolean;
  /** Trailing silence (ms) that ends an utterance; `null` disables endpointing. */
  endpointingMs?: number | null;
  /** Emit voice-activity events (`SpeechStarted` in the Deepgram-style dialect). */
  vadEvents?: boolean;
  /**
   * Transcribe each interleaved channel independently (Deepgram `multichannel=true`, §2.2): one engine
   * stream per channel, results tagged with their channel index. Otherwise channels are downmixed.
   */
  multichannel?: boolean;
  /**
   * Milliseconds of word-free audio after the last final word that produce an `utterance_end` event
   * (Deepgram `utterance_end_ms`, §2.4). Undefined/null: off.
   */
  utteranceEndMs?: number | null;
  /**
   * Diarize (issue 13): present = on, with the client's speaker-count hints (already range-checked by
   * src/diarize/hints.ts). Deepgram `diarize=true`/`diarize_model`, unified `enable_diarization`/`diarize`,
   * smallest.ai `diarize=true`. With `multichannel`, each channel is its own speaker.
   */
  diarize?: import('../diarize/types.js').DiarizeOptions;
  /** Transcript formatting asked for in `init.config` (`smart_format`, `punctuate`, `numerals`; §1.4). */
  format?: FormatOptions;
  /**
   * The one message family a client of the `dual` dialect asked for (`init.config.dialect`,
   * src/protocol/dual/); absent: both families. Other dialects never set it.
   */
  replies?: DualReplies;
}

/** Message families of the `dual` dialect a client may narrow it to. */
export type DualReplies = 'unified' | 'deepgram-style';

/** A parsed client frame. `invalid` carries the error the dialect detected. */
export type ClientCommand =
  | { kind: 'init'; init: SttInitRequest }
  | { kind: 'audio'; data: Uint8Array }
  | { kind: 'finalize' }
  | { kind: 'close' }
  | { kind: 'keepalive' }
  | { kind: 'invalid'; code: Extract<ErrorCode, 'invalid_request' | 'config_error'>; message: string };

/** Session-level facts every dialect may need when encoding. */
export interface SessionInfo {
  sessionId: string;
  /** UUID of this request (Deepgram `request_id`). */
  requestId: string;
  model: SttModelEntry;
  /** When the session started. */
  createdAt: Date;
  /** Channels in the client's audio. */
  channels: number;
  /** Engine id and version for model metadata. */
  engine: { id: string; version: string };
  /** The client asked for voice-activity events. */
  vadEvents: boolean;
  /** Independent transcript channels: `channels` when multichannel, else 1 (Deepgram `channel_index[1]`). Default 1. */
  transcriptChannels?: number;
  /** Formatting for finals (catalogue dialects; query dialects carry their own). Absent: none. */
  format?: FormatOptions;
  /** `dual` dialect only: the one message family the client asked for in `init` (absent: both). */
  replies?: DualReplies;
}

/** Something the session reports to the client. */
export type SessionEvent =
  | { kind: 'ready'; info: SessionInfo }
  /** `channel`: 0-based transcript channel; absent means 0 (always 0 unless multichannel). */
  | { kind: 'partial'; info: SessionInfo; channel?: number; result: SttPartial }
  | { kind: 'final'; info: SessionInfo; channel?: number; result: SttFinal }
  /** `timestamp`: seconds from stream start. */
  | { kind: 'speech_started'; info: SessionInfo; channel?: number; timestamp: number }
  /** No words for `utteranceEndMs` after the last final word; `lastWordEnd` in seconds from stream start. */
  | { kind: 'utterance_end'; info: SessionInfo; channel?: number; lastWordEnd: number }
  | { kind: 'error'; code: ErrorCode; message: string }
  /** The session drained; totals for the closing metadata. `audioSeconds` in seconds, `sha256` of all audio bytes received. */
  | { kind: 'ended'; info: SessionInfo; audioSeconds: number; sha256: string };

/** How a dialect ends a session on an error: a WebSocket close code and reason (≤ 123 bytes). */
export interface DialectClose {
  code: number;
  reason: string;
}

/**
 * A wire dialect for streaming STT: pure translation in both directions. Catalogue dialects are
 * shared singletons; query-configured dialects (Deepgram `/v1/listen`, smallest.ai) are created per
 * session from the query string and may keep per-session encoding state (e.g. a running full transcript).
 */
export interface SttDialect {
  readonly name: SttDialectName | 'deepgram' | 'smallest-lightning' | 'smallest-pulse';
  /** Finals must always carry words in this dialect (Deepgram `Results` require `words`). */
  readonly alwaysWords: boolean;
  /** Parse one text frame. Never throws: problems become `{kind:'invalid'}`. */
  parseText(text: string): ClientCommand;
  /** Encode one event as zero or more text frames (JSON strings). */
  encode(event: SessionEvent): string[];
  /**
   * For dialects without an error frame (Deepgram `/v1/listen`, §2.4–2.5): the close that reports
   * `code`. When defined, every session error ends the session with the returned close instead of an
   * error frame (idle and duration limits drain pending finals first).
   */
  closeFor?(code: ErrorCode, message: string): DialectClose;
  /** Seconds without any client frame before `idle_timeout_exceeded` (Deepgram: 10, §2.5). Default: config limit. */
  readonly idleTimeoutSeconds?: number;
  /** An empty binary frame means "end of audio" (Deepgram's legacy close signal, §2.3). Default: ignored. */
  readonly emptyBinaryCloses?: boolean;
}
