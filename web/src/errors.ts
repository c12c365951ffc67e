/**
 * Server errors in words: the unified dialects' `error` codes (protocols.md §1.3 error table) and
 * WebSocket close codes (RFC 6455 §7.4.1), as the playground shows them.
 */

const CODE_TEXT: Record<string, string> = {
  auth_error: 'The API key was rejected.',
  config_error: 'The server rejected the session settings.',
  invalid_request: 'The server could not use a message.',
  payload_too_large: 'A message was too large for the server.',
  rate_limit: 'The server is at capacity; try again shortly.',
  rate_limit_exceeded: 'The server is at capacity; try again shortly.',
  idle_timeout_exceeded: 'The session was closed because nothing was sent for too long.',
  max_connection_duration_exceeded: 'The session reached its maximum length.',
  not_found: 'Unknown model.',
  backpressure: 'The server could not keep up.',
  provider_error: 'The speech engine failed.',
  internal_error: 'The server hit an internal error.',
};

/** A readable sentence for a server `error` frame: "<explanation> (<code>: <message>)". */
export function describeServerError(code: string, message: string): string {
  const text = CODE_TEXT[code] ?? 'The server reported an error.';
  return `${text} (${code}: ${message})`;
}

/** A readable sentence for an unexpected close, or null for a normal one (1000/1001 by us). */
export function describeClose(code: number, reason: string): string | null {
  const r = reason ? `: ${reason}` : '';
  switch (code) {
    case 1000:
      return null;
    case 1001:
      return `The server is shutting down (close 1001${r}).`;
    case 1006:
      return 'The connection was lost (close 1006, no close frame).';
    case 1008:
      return `The server ended the session for a policy reason (close 1008${r}).`;
    case 1009:
      return `A message was too large (close 1009${r}).`;
    case 1011:
      return `The server hit an internal error (close 1011${r}).`;
    case 1013:
      return `The server is at capacity; try again later (close 1013${r}).`;
    default:
      return `The connection closed unexpectedly (close ${code}${r}).`;
  }
}
