/**
 * What every WebSocket session shares, STT and TTS alike (issue 10 part 1 "One session core for STT
 * and TTS (timers, terminate, transport)"): identity, the idle/init timer, the maximum-duration timer,
 * the text-frame guards run before any JSON is parsed, the commands every dialect has (`invalid`,
 * `keepalive`, a repeated `init`), and the one way a session ends (`terminate` → `finish`).
 *
 * The subclasses (`SttSession`, `TtsSession`) keep what differs: their state machines between `init`
 * and `closed`, the engine work, and how an error is reported in their dialects.
 *
 * Units: timer lengths in seconds (as in `limits`), sizes in bytes or characters as named.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { jsonShapeError } from '../util/json_guard.js';
import type { ErrorCode } from '../util/errors.js';

/** A close the session sends: RFC 6455 code and a reason (cut to 120 bytes on the wire). */
export interface SessionClose {
  code: number;
  reason: string;
}

/** Options of {@link SessionCore}. */
export interface SessionCoreOptions {
  /** Prefix of {@link SessionCore.id}: `sess_` (STT) or `sess_tts_` (TTS). */
  idPrefix: string;
  /** Request id to report (Deepgram `request_id`); default a new UUID. */
  requestId?: string;
  /** Parent logger; the session logs through a child with `session_id` and `model`. */
  log: Logger;
  /** Catalogue model code, for the log child. */
  modelCode: string;
  /** Hard cap on the session's length, seconds (`limits.maxSessionSeconds`). */
  maxSessionSeconds: number;
}

/** The limits {@link SessionCore.guardText} applies before a text frame is parsed. */
export interface TextGuardLimits {
  /** Longest accepted text frame, characters. */
  maxChars: number;
  /** Deepest JSON nesting (`limits.maxJsonDepth`). */
  maxJsonDepth: number;
  /** Most JSON tokens (`limits.maxJsonTokens`). */
  maxJsonTokens: number;
}

/** The commands every dialect parses the same way (protocols.md §1.3, §1.5, §2, §3). */
export type CommonCommand =
  /** A frame the dialect could not accept; `close` when the dialect ends the session for it. */
  | { kind: 'invalid'; code: ErrorCode; message: string; close?: SessionClose }
  | { kind: 'keepalive' }
  /** Settings of a new session; only valid while awaiting `init`. */
  | { kind: 'init'; init: unknown };

/**
 * Base of the session state machines. `S` is the subclass's state union without `closed`.
 * Subclasses implement {@link closeTransport}, {@link release}, {@link notifyClosed},
 * {@link reportError} and {@link fail}, and call {@link finish} only through {@link terminate} or
 * directly when the client vanished.
 */
export abstract class SessionCore<S extends string> {
  /** Session id (`sess_…` / `sess_tts_…`), sent in `ready` and logs. */
  readonly id: string;
  /** Request id (Deepgram `request_id`, `dg-request-id`). */
  readonly requestId: string;
  /** When the session was created (upgrade accepted). */
  readonly createdAt = new Date();
  /** Current state; `closed` is final. */
  protected st: S | 'closed';
  protected readonly log: Logger;
  private idleTimer: NodeJS.Timeout | null = null;
  private maxTimer: NodeJS.Timeout | null = null;
  private closeCodeSent: number | null = null;
  private resolveClosed!: () => void;
  /** Resolves once the session reaches `closed` (any way). Never rejects. */
  readonly closed: Promise<void> = new Promise<void>((r) => (this.resolveClosed = r));

  protected constructor(initial: S, o: SessionCoreOptions) {
    this.st = initial;
    this.id = o.idPrefix + randomBytes(9).toString('base64url');
    this.requestId = o.requestId ?? randomUUID();
    this.log = o.log.child({ session_id: this.id, model: o.modelCode });
    this.maxTimer = setTimeout(() => this.onMaxDuration(`session exceeded the maximum duration of ${o.maxSessionSeconds} s`), o.maxSessionSeconds * 1000);
    this.maxTimer.unref();
  }

  /** The close code the server sent, or null (client closed first / still open). */
  get closeCode(): number | null {
    return this.closeCodeSent;
  }

  // ---- hooks ----

  /** Close the transport (WebSocket close frame). Called once, by {@link terminate}. */
  protected abstract closeTransport(code: number, reason: string): void;
  /** Stop the subclass's work and free its resources (engine streams, decoders, queues, timers). Idempotent. */
  protected abstract release(): void;
  /** Tell the owner the session closed (`onClosed` option). */
  protected abstract notifyClosed(): void;
  /** Report an error in the dialect's way; the session survives unless the dialect closes for it. */
  protected abstract reportError(code: ErrorCode, message: string): void;
  /** Report an error and end the session, with `close` or the dialect's close for `code`. */
  protected abstract fail(code: ErrorCode, message: string, close?: SessionClose): void;
  /** `limits.maxSessionSeconds` passed; `message` says so. */
  protected abstract onMaxDuration(message: string): void;

  // ---- timers ----

  /**
   * (Re)arm the idle timer: `onExpire` runs after `seconds` unless re-armed or cleared first.
   * Used both for the `init` deadline and for idleness while streaming.
   */
  protected armIdle(seconds: number, onExpire: () => void): void {
    this.clearIdle();
    if (this.st === 'closed') return;
    this.idleTimer = setTimeout(onExpire, seconds * 1000);
    this.idleTimer.unref();
  }

  /** Stop the idle timer. */
  protected clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  // ---- input guards ----

  /**
   * Checks a text frame may be parsed: not longer than `maxChars`, JSON not nested or token-dense
   * beyond the limits (checked by a linear scan before `JSON.parse`, issue 14 #1).
   * @returns null when the frame may be parsed, else the refusal (`payload_too_large` or `invalid_request`) to report.
   */
  protected textRefusal(text: string, l: TextGuardLimits): { code: ErrorCode; message: string; tooLong: boolean } | null {
    if (text.length > l.maxChars) {
      return { code: 'payload_too_large', message: `text frame of ${text.length} characters exceeds the ${l.maxChars}-character limit; the frame was rejected`, tooLong: true };
    }
    const problem = jsonShapeError(text, { maxDepth: l.maxJsonDepth, maxTokens: l.maxJsonTokens });
    if (problem) return { code: 'invalid_request', message: `text frame refused: ${problem}; the frame was rejected`, tooLong: false };
    return null;
  }

  /**
   * The commands every dialect shares: `invalid` (error frame, or end the session when the dialect
   * closes for it or when an `init` is refused with `config_error`), `keepalive` (nothing: the frame
   * already counted as activity), and `init` (started while awaiting it; a repeated one gets
   * `invalid_request` and the session survives).
   * @param cmd the parsed command (any kind).
   * @param reinitMessage what a repeated `init` is told.
   * @param start starts the session with an accepted `init`'s settings.
   * @returns true when `cmd` was one of these and has been handled; false for the subclass's own kinds.
   */
  protected dispatchCommon<I>(cmd: { kind: string }, reinitMessage: string, start: (init: I) => void): boolean {
    const c = cmd as CommonCommand | { kind: 'init'; init: I };
    switch (c.kind) {
      case 'invalid':
        if (c.close) this.fail(c.code, c.message, c.close);
        else if (c.code === 'config_error' && this.st === 'awaiting_init') this.fail('config_error', c.message);
        else this.reportError(c.code, c.message);
        return true;
      case 'keepalive':
        return true;
      case 'init':
        if (this.st === 'awaiting_init') start((c as { init: I }).init);
        else this.reportError('invalid_request', reinitMessage);
        return true;
      default:
        return false;
    }
  }

  // ---- ending ----

  /** Close the transport with `code`/`reason` and finish. No-op once closed. */
  protected terminate(code: number, reason: string): void {
    if (this.st === 'closed') return;
    this.closeCodeSent = code;
    this.closeTransport(code, reason.slice(0, 120));
    this.finish();
  }

  /** Reach `closed`: release everything, stop the timers, tell the owner. No-op once closed. */
  protected finish(): void {
    if (this.st === 'closed') return;
    this.st = 'closed';
    this.release();
    this.clearIdle();
    if (this.maxTimer) clearTimeout(this.maxTimer);
    this.maxTimer = null;
    this.notifyClosed();
    this.resolveClosed();
  }
}
