/**
 * A linear, allocation-free structural check of JSON text run BEFORE `JSON.parse` (issue 14 #1):
 * `JSON.parse` of a deeply nested or token-dense document (a 1.4 MB `[[[[…` WebSocket frame, a 44 MB
 * nested-array HTTP body) blocks the event loop for seconds and costs gigabytes. This scanner counts
 * nesting depth and structural tokens (values, keys, separators) and stops at the first excess, so a
 * hostile document costs at most one pass over its bytes, and a document it accepts has few enough
 * tokens that `JSON.parse` is linear in its (string-dominated) size.
 *
 * It does not validate JSON (`JSON.parse` still does); it only bounds the work parsing would do.
 * Strings are skipped with `indexOf`, so a large base64 `audio` string costs a native scan.
 */

/** Limits of a {@link JsonShapeScanner}. */
export interface JsonShapeLimits {
  /** Deepest array/object nesting accepted (`[[1]]` has depth 2). */
  maxDepth: number;
  /** Most tokens accepted: each string, `[`, `{`, `,`, `:` and bare value start counts one. */
  maxTokens: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Incremental scanner: feed the document in chunks (bytes in UTF-8, or a whole string) with
 * {@link JsonShapeScanner.push}; the first excess is reported and sticks.
 */
export class JsonShapeScanner {
  private depth = 0;
  private tokens = 0;
  private inString = false;
  private escaped = false;
  /** Previous byte outside strings was part of a bare value (number, true, false, null). */
  private inBare = false;
  private problem: string | null = null;

  constructor(private readonly limits: JsonShapeLimits) {}

  /** The reason the document is refused, or null while it is within the limits. */
  get error(): string | null {
    return this.problem;
  }

  /**
   * Scan the next chunk of the document.
   * @returns the refusal reason (also kept in {@link error}) or null.
   */
  push(chunk: Uint8Array | string): string | null {
    if (this.problem) return this.problem;
    if (typeof chunk === 'string') {
      return this.scan(chunk.length, (i) => chunk.charCodeAt(i), (c, from) => chunk.indexOf(c === QUOTE ? '"' : '\\', from));
    }
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    return this.scan(buf.length, (i) => buf[i]!, (c, from) => buf.indexOf(c, from));
  }

  /** One pass over `n` code units read with `at`; `find` locates the next quote/backslash natively. */
  private scan(n: number, at: (i: number) => number, find: (c: number, from: number) => number): string | null {
    let i = 0;
    let nextBackslash = -1; // cached position of the next backslash at or after i (n = none)
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        if (nextBackslash < i) {
          nextBackslash = find(BACKSLASH, i);
          if (nextBackslash < 0) nextBackslash = n;
        }
        let q = find(QUOTE, i);
        if (q < 0) q = n;
        if (nextBackslash < q) {
          this.escaped = true;
          i = nextBackslash + 1;
          continue;
        }
        if (q === n) return null; // the string goes on in the next chunk
        this.inString = false;
        i = q + 1;
        continue;
      }
      const c = at(i);
      i++;
      switch (c) {
        case QUOTE:
          this.inString = true;
          this.inBare = false;
          if (++this.tokens > this.limits.maxTokens) return this.fail();
          continue;
        case 0x5b: // [
        case 0x7b: // {
          this.inBare = false;
          if (++this.depth > this.limits.maxDepth) {
            this.problem = `JSON nested deeper than ${this.limits.maxDepth} levels; it was not parsed`;
            return this.problem;
          }
          if (++this.tokens > this.limits.maxTokens) return this.fail();
          continue;
        case 0x5d: // ]
        case 0x7d: // }
          this.inBare = false;
          if (this.depth > 0) this.depth--;
          continue;
        case 0x2c: // ,
        case 0x3a: // :
          this.inBare = false;
          if (++this.tokens > this.limits.maxTokens) return this.fail();
          continue;
        case 0x20:
        case 0x09:
        case 0x0a:
        case 0x0d:
          this.inBare = false;
          continue;
        default:
          if (!this.inBare) {
            this.inBare = true;
            if (++this.tokens > this.limits.maxTokens) return this.fail();
          }
      }
    }
    return null;
  }

  private fail(): string {
    this.problem = `JSON holds more than ${this.limits.maxTokens} values; it was not parsed`;
    return this.problem;
  }
}

/**
 * Check a whole JSON text against `limits` before parsing it.
 * @returns null when it may be parsed, else the reason it must not be.
 */
export function jsonShapeError(text: string, limits: JsonShapeLimits): string | null {
  return new JsonShapeScanner(limits).push(text);
}
