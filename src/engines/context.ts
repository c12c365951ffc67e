/**
 * The request context every engine call receives (engine contract v2, issue 10 part 1; modelled on
 * livekit agents-js `APIConnectOptions` and its per-call abort signal).
 *
 * Engines use it to label upstream requests (request id), honour a caller's deadline and abort, and
 * report which region/backend served them. Embedded engines may ignore it.
 */

/** Per-request data passed down from the front door to an engine's `start()` / `synthesize()`. */
export interface RequestContext {
  /** The gateway's id for this request (echoed as `dg-request-id` / `request_id`; sent upstream where the protocol has a field for it). */
  requestId: string;
  /** Catalogue model code the client asked for, e.g. `slng/deepgram/nova:3-en`. */
  modelCode: string;
  /** Region pinned by the client (`X-Region-Override` / `?region=`), if any. */
  region?: string;
  /** World part pinned by the client (`X-World-Part-Override` / `?world-part=`), if any. */
  worldPart?: string;
  /** Aborted when the client goes away or the session ends; engines abort their connects and streams. */
  signal?: AbortSignal;
  /** Absolute deadline for connecting, as `performance.now()` milliseconds; absent = engine default. */
  connectDeadline?: number;
  /**
   * The client's own provider key (BYOK: `X-Slng-Provider-Key`, only on external — non-`slng/` —
   * routes; protocols.md §1.1). Upstream engines send it instead of their configured key; a provider
   * refusing it reaches the client as `backend_connection_failed` with the provider's 401/403. Never
   * logged. Embedded engines ignore it.
   */
  providerKey?: string;
}

/** A context for internal callers (CLI, tests) that have no request: a fresh id, no pins. */
export function internalContext(modelCode = 'internal', signal?: AbortSignal): RequestContext {
  return { requestId: globalThis.crypto.randomUUID(), modelCode, signal };
}
