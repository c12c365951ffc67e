/**
 * What the scripted fake STT and TTS engines share (src/engines/stt/fake, src/engines/tts/fake;
 * issue 10 Part 1): a zod-validated script that tests may replace between sessions, and the error
 * type carrying LiveKit's `retryable` flag (agents-js `APIError.retryable`, `agents/src/_exceptions.ts`).
 */
import type { z } from 'zod';
import { VoxgateError, type ErrorCode } from '../util/errors.js';

/**
 * An engine failure with a `retryable` flag: true when the same request may succeed on another
 * attempt or another backend (the switch failover tests use).
 */
export class FakeEngineError extends VoxgateError {
  constructor(code: ErrorCode, message: string, retryable: boolean) {
    super(code, message, { retryable });
    this.name = 'FakeEngineError';
  }
}

/**
 * Base of the fake engines: `id`, `version`, a no-op `init`, and the {@link script} property
 * (input form on write, validated and with defaults filled on read).
 */
export abstract class ScriptedFake<S extends z.ZodType<object>> {
  /** Engine version reported in metadata (e.g. Deepgram `model_info.version`). */
  readonly version = 'fake-1';
  /** The current script, validated. */
  protected parsed: z.output<S>;

  protected constructor(
    private readonly schema: S,
    readonly id: string,
    script: z.input<S> | undefined,
  ) {
    this.parsed = schema.parse(script ?? {});
  }

  /** The script new streams/jobs follow. Setting it validates it (throws a zod error when malformed). */
  get script(): z.output<S> {
    return this.parsed;
  }
  set script(s: z.input<S>) {
    this.parsed = this.schema.parse(s);
  }

  /** Nothing to load. */
  async init(): Promise<void> {}
}
