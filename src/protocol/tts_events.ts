/**
 * Dialect-neutral messages between a TTS wire dialect and a TTS session (issue #4).
 *
 * As for STT: a dialect parses client frames into {@link TtsCommand}s and encodes
 * {@link TtsEvent}s into wire frames (text or binary); it does no I/O, so it is unit-tested on
 * recorded sequences. Dialects: `tts-unified/` (SLNG unified TTS, protocols.md §1.5) and
 * `deepgram-speak/` (Deepgram `/v1/speak`, §3).
 */
import type { TtsEncoding } from '../audio/encode.js';
import type { TtsModelEntry } from '../config/tts_config.js';
import type { TtsVoice } from '../engines/tts/types.js';
import type { ErrorCode } from '../util/errors.js';

/** `init` options after dialect parsing (all optional; validated by the session). */
export interface TtsInitRequest {
  /** `init.model` as sent (informational; a voice name there is used when `voice` is absent). */
  model?: string;
  voice?: string;
  language?: string;
  encoding?: string;
  /** Hz. */
  sampleRate?: number;
  /** Multiplier. */
  speed?: number;
  /** `false` = send audio as fast as it is synthesised (no real-time pacing). voxgate extension. */
  pacing?: boolean;
}

/** How an invalid frame ends, when it does: a WebSocket close code and reason. */
export interface CloseSpec {
  code: number;
  /** ≤ 123 bytes (RFC 6455). */
  reason: string;
}

/** A parsed client frame. */
export type TtsCommand =
  | { kind: 'init'; init: TtsInitRequest }
  /** Text to speak; `flush` = flush right after it. Empty text is a no-op (and a flush still flushes). */
  | { kind: 'text'; text: string; flush: boolean }
  | { kind: 'flush' }
  /**
   * The dialect refuses a valid frame without an error: the client gets a `warning` event and the
   * session changes nothing (Deepgram: a `Flush` over 20 per 60 s is not processed, protocols.md §3).
   */
  | { kind: 'warning'; code: string; description: string }
  | { kind: 'clear' }
  | { kind: 'cancel' }
  | { kind: 'close' }
  | { kind: 'keepalive' }
  /** A frame the dialect rejects: an error for the client, and a close when `close` is set. */
  | { kind: 'invalid'; code: ErrorCode; message: string; close?: CloseSpec };

/** Facts about a started session that dialects may need. */
export interface TtsSessionInfo {
  sessionId: string;
  /** UUID of this connection (Deepgram `request_id`). */
  requestId: string;
  model: TtsModelEntry;
  voice: TtsVoice;
  /** The voice name the client asked for (e.g. an Aura alias), else the voice id. */
  voiceName: string;
  engine: { id: string; version: string };
  encoding: TtsEncoding;
  /** Output rate, Hz. */
  sampleRate: number;
}

/** Something the session reports. */
export type TtsEvent =
  | { kind: 'ready'; info: TtsSessionInfo }
  /** Encoded audio; `sequence` counts audio events from 1 per session. */
  | { kind: 'audio'; data: Buffer; sequence: number }
  | { kind: 'segment_start'; segmentId: string }
  | { kind: 'segment_end'; segmentId: string }
  /** All audio for text before the flush has been sent; `sequenceId` counts flushes from 0. */
  | { kind: 'flushed'; sequenceId: number }
  /** Acknowledges `clear`/`cancel`; no audio from before it follows. `sequenceId` counts clears from 0. */
  | { kind: 'cleared'; sequenceId: number }
  /** An utterance's audio is complete; `duration` in seconds of audio at the output rate. */
  | { kind: 'audio_end'; duration: number }
  | { kind: 'warning'; code: string; description: string }
  | { kind: 'error'; code: ErrorCode; message: string };

/** One outgoing WebSocket frame: a string is a text frame, a Buffer a binary frame. */
export type WireFrame = string | Buffer;

/** A TTS wire dialect. One instance per session (it may keep counters such as Deepgram's Flush rate). */
export interface TtsDialect {
  readonly name: string;
  /** `true` when the session is configured from the URL and starts at once (no `init`), e.g. Deepgram. */
  readonly implicitInit: boolean;
  /** Parse one text frame. Never throws. */
  parseText(text: string): TtsCommand;
  /** A binary frame of `bytes` bytes arrived (TTS clients send no binary). */
  binaryFrame(bytes: number): TtsCommand;
  /** A frame over the server's frame limit arrived. */
  oversizedFrame(bytes: number, limit: number): TtsCommand;
  /**
   * A text frame the server refused before parsing it (not UTF-8, JSON nested too deep or too many
   * values; issue 14 #1/#8): answered like any malformed frame of this dialect. `message` says why.
   */
  rejectedText(message: string): TtsCommand;
  /** Encode one event as zero or more frames. */
  encode(ev: TtsEvent): WireFrame[];
  /**
   * How a session-ending error closes the socket in this dialect. Called after the error event was
   * encoded (dialects without error frames signal errors only here).
   */
  closeFor(code: ErrorCode): CloseSpec;
}
