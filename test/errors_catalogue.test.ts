/**
 * The error catalogue and its renderers (issue 10 Part 1: one catalogue, one renderer per dialect
 * family; src/util/errors.ts). Every ErrorCode renders in every family; the SLNG family emits SLNG
 * codes only (protocols.md §1.3); Deepgram bodies carry Deepgram's own `err_code` and ASCII-only
 * `dg-*` headers (§2.1, §3); smallest.ai bodies are `{status:"error", error:{message, code}}` (§4.1).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { listenCloseFor } from '../src/protocol/deepgram/listen.js';
import { speakCloseFor } from '../src/protocol/deepgram-speak/index.js';
import { createUnifiedTtsDialect } from '../src/protocol/tts-unified/index.js';
import { ERRORS, headerSafe, renderError, slngErrorCode, VoxgateError, type DialectFamily, type ErrorCode } from '../src/util/errors.js';

const SLNG = new Set(['auth_error', 'config_error', 'rate_limit', 'provider_error', 'backend_connection_failed', 'invalid_request', 'payload_too_large', 'idle_timeout_exceeded', 'max_connection_duration_exceeded', 'backpressure']);
const CODES = Object.keys(ERRORS) as ErrorCode[];
const FAMILIES: DialectFamily[] = ['slng', 'deepgram', 'smallest'];
const ASCII = /^[\x20-\x7e]*$/;

describe('error catalogue renderers', () => {
  it('every ErrorCode renders in every family with the catalogue status and a JSON body', () => {
    assert.ok(CODES.length >= 13);
    for (const code of CODES) {
      for (const family of FAMILIES) {
        const r = renderError(family, new VoxgateError(code, `detail of ${code}`), { requestId: '0b7f7c1e-0000-4000-8000-000000000000' });
        assert.equal(r.status, ERRORS[code].http, `${family} ${code}`);
        assert.ok(r.status >= 400 && r.status < 600);
        assert.deepEqual(JSON.parse(JSON.stringify(r.body)), r.body, 'serialisable');
        for (const [k, v] of Object.entries(r.headers)) assert.match(v, ASCII, `${family} ${code} ${k}`);
        if (r.status === 401) assert.ok(r.headers['WWW-Authenticate']);
      }
    }
  });

  it('SLNG family: only SLNG codes, the detail in message, statusCode = the HTTP status', () => {
    for (const code of CODES) {
      const r = renderError('slng', new VoxgateError(code, `detail of ${code}`));
      assert.ok(SLNG.has(r.body.error as string), `${code} → ${String(r.body.error)}`);
      assert.equal(r.body.error, slngErrorCode(code));
      assert.equal(r.body.message, `detail of ${code}`);
      assert.equal(r.body.statusCode, r.status);
      assert.equal(r.body.status, r.status);
      assert.equal(r.headers['dg-error'], undefined);
    }
  });

  it("Deepgram family: Deepgram's err_code, err_msg, request_id, and ASCII dg-error / dg-request-id headers", () => {
    const nasty = 'voice “ünknown” — bad\r\nline\u0000 🙂 ' + 'x'.repeat(400);
    for (const code of CODES) {
      const r = renderError('deepgram', new VoxgateError(code, nasty));
      assert.deepEqual(Object.keys(r.body).sort(), ['err_code', 'err_msg', 'request_id']);
      assert.equal(r.body.err_code, ERRORS[code].deepgram);
      assert.match(r.body.err_code as string, /^([A-Z_]+|Bad Request)$/);
      assert.equal(r.body.err_msg, nasty);
      assert.match(r.body.request_id as string, /^[0-9a-f-]{36}$/);
      assert.equal(r.headers['dg-request-id'], r.body.request_id);
      assert.match(r.headers['dg-error']!, ASCII);
      assert.ok(r.headers['dg-error']!.length <= 200);
      assert.ok(r.headers['dg-error']!.startsWith('voice   nknown  - bad  line'), r.headers['dg-error']);
    }
    const dg = (c: ErrorCode) => renderError('deepgram', new VoxgateError(c, 'x')).body.err_code;
    assert.deepEqual(
      [dg('auth_error'), dg('config_error'), dg('payload_too_large'), dg('rate_limit'), dg('invalid_request'), dg('invalid_audio'), dg('unavailable')],
      ['INVALID_AUTH', 'INVALID_QUERY_PARAMETER', 'PAYLOAD_TOO_LARGE', 'TOO_MANY_REQUESTS', 'Bad Request', 'Bad Request', 'SERVICE_UNAVAILABLE'],
    );
  });

  it('smallest.ai family: {status:"error", error:{message, code}}', () => {
    for (const code of CODES) {
      const r = renderError('smallest', new VoxgateError(code, 'm'));
      assert.deepEqual(r.body, { status: 'error', error: { message: 'm', code } });
    }
  });

  it('extra fields are added but never replace the family fields; Retry-After and WWW-Authenticate per code', () => {
    const r = renderError('slng', new VoxgateError('not_found', 'no such model'), { extra: { models: [1], error: 'hijack', message: 'hijack' } });
    assert.deepEqual(r.body, { error: 'invalid_request', message: 'no such model', statusCode: 404, status: 404, models: [1] });
    assert.equal(renderError('slng', new VoxgateError('rate_limit', 'busy')).headers['Retry-After'], '1');
    assert.equal(renderError('deepgram', new VoxgateError('unavailable', 'draining')).headers['Retry-After'], '5');
    assert.equal(renderError('deepgram', new VoxgateError('auth_error', 'x')).headers['WWW-Authenticate'], 'Token');
    assert.equal(renderError('slng', new VoxgateError('auth_error', 'x')).headers['WWW-Authenticate'], 'Bearer');
    assert.equal(headerSafe('a\u2013b\u00e9c'), 'a-b c');
  });

  it('close codes per family come from the catalogue and keep the Deepgram tables of protocols.md §2.5 and §3', () => {
    // The tables the dialects held before the catalogue did (listen.ts / deepgram-speak/index.ts):
    // code → [/v1/listen close, tag], [/v1/speak close, reason].
    const D = [1008, 'DATA-0000'] as const;
    const N0 = [1011, 'NET-0000'] as const;
    const before: Record<ErrorCode, readonly [readonly [number, string], readonly [number, string]]> = {
      auth_error: [D, N0],
      config_error: [D, D],
      invalid_request: [D, D],
      invalid_audio: [D, N0],
      payload_too_large: [[1009, 'BIG-0000'], [1009, 'BIG-0000']],
      rate_limit: [[1013, 'NET-0000'], [1013, 'rate_limit']],
      idle_timeout_exceeded: [[1011, 'NET-0001'], [1011, 'NET-0001']],
      max_connection_duration_exceeded: [[1011, 'NET-0003'], [1011, 'NET-0003']],
      not_found: [D, N0],
      backpressure: [D, [1011, 'NET-0002']],
      provider_error: [N0, N0],
      internal_error: [N0, N0],
      unavailable: [D, N0],
      backend_connection_failed: [N0, N0],
    };
    const listen = (c: ErrorCode) => before[c][0];
    const speak = (c: ErrorCode) => before[c][1];
    for (const code of CODES) {
      const l = listenCloseFor(code, 'detail');
      assert.deepEqual([l.code, l.reason.split(':')[0]], listen(code), `listen ${code}`);
      const sp = speakCloseFor(code);
      assert.deepEqual([sp.code, sp.reason], speak(code), `speak ${code}`);
      const c = ERRORS[code].close;
      assert.ok(c === null || (c >= 1000 && c < 5000), `slng ${code}`);
    }
  });

  it('unified TTS frames and close reasons carry SLNG codes only (an engine failure is provider_error)', () => {
    const d = createUnifiedTtsDialect({ audio: 'binary', maxTextChars: 100 });
    for (const code of CODES) {
      const [frame] = d.encode({ kind: 'error', code, message: 'm' });
      const m = JSON.parse(String(frame)) as { type: string; code: string };
      assert.ok(SLNG.has(m.code), `${code} → ${m.code}`);
      assert.ok(SLNG.has(d.closeFor(code).reason), `close ${code}`);
    }
    assert.equal((JSON.parse(String(d.encode({ kind: 'error', code: 'internal_error', message: 'm' })[0])) as { code: string }).code, 'provider_error');
  });
});
