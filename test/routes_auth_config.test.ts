/**
 * Route matching, key extraction/redaction, key store and config loading — pure or local-disk units.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { matchSttRoute } from '../src/server/routes.js';
import { presentedKey, redactUrl } from '../src/server/auth.js';
import { DEFAULT_STT_MODELS, loadConfig } from '../src/config/config.js';
import { KeyStore, adminKeyPath, readSavedAdminKey } from '../src/store/keys.js';

describe('routes', () => {
  const models = DEFAULT_STT_MODELS;
  it('matches direct routes with their catalogue dialect, bridges always unified, two-segment providers', () => {
    assert.equal((matchSttRoute('/v1/stt/local/pocketsphinx:en', models) as { dialect: string }).dialect, 'unified');
    assert.equal((matchSttRoute('/v1/stt/local/pocketsphinx:en-deepgram', models) as { dialect: string }).dialect, 'deepgram-style');
    assert.equal((matchSttRoute('/v1/bridges/unmute/stt/local/pocketsphinx:en-deepgram', models) as { dialect: string }).dialect, 'unified');
    assert.equal((matchSttRoute('/v1/stt/slng/deepgram/nova:3-en', models) as { model: { code: string } }).model.code, 'slng/deepgram/nova:3-en');
    assert.equal((matchSttRoute('/v1/stt/slng/deepgram/nova:3-en', models) as { dialect: string }).dialect, 'dual', 'seed codes answer in both families');
    assert.equal((matchSttRoute('/v1/bridges/unmute/stt/slng/deepgram/nova:3-en', models) as { dialect: string }).dialect, 'unified');
    assert.equal((matchSttRoute('/v1/stt/local/pocketsphinx%3Aen', models) as { model: { code: string } }).model.code, 'local/pocketsphinx:en');
  });
  it('distinguishes unknown models from non-STT paths', () => {
    assert.deepEqual(matchSttRoute('/v1/stt/nope/nada:1', models), { notFound: 'nope/nada:1' });
    assert.equal(matchSttRoute('/v1/tts/x/y', models), null);
  });
});

describe('auth helpers', () => {
  const u = new URL('http://h/v1/stt/a/b?token=secret&x=1');
  it('reads Bearer, Token, X-API-Key and ?token=', () => {
    assert.equal(presentedKey({ authorization: 'Bearer k1' }, u), 'k1');
    assert.equal(presentedKey({ authorization: 'token k2' }, u), 'k2');
    assert.equal(presentedKey({ 'x-api-key': 'k3' }, u), 'k3');
    assert.equal(presentedKey({}, u), 'secret');
    assert.equal(presentedKey({}, new URL('http://h/')), null);
  });
  it('redacts the token from logged URLs', () => {
    assert.equal(redactUrl(u).includes('secret'), false);
    assert.match(redactUrl(u), /token=REDACTED/);
  });
});

describe('key store', () => {
  it('stores only hashes, verifies, revokes, and bootstraps one admin key saved 0600', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vg-keys-'));
    try {
      const s = new KeyStore(dir);
      const admin = s.ensureAdminKey();
      assert.ok(admin);
      assert.equal(s.ensureAdminKey(), null, 'second start creates no new admin key');
      assert.equal(readSavedAdminKey(dir), admin);
      assert.equal(statSync(adminKeyPath(dir)).mode & 0o777, 0o600);
      const { key, info } = s.create('ci');
      assert.equal(s.verify(key)?.id, info.id);
      assert.equal(s.verify(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A')), null);
      assert.equal(s.verify('garbage'), null);
      assert.ok(s.list().find((k) => k.id === info.id)?.lastUsedAt);
      assert.equal(s.revoke(info.id), true);
      assert.equal(s.verify(key), null);
      assert.equal(s.revoke(info.id), false);
      s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config', () => {
  it('defaults to the embedded engine in both dialects, then the seed codes in the dual dialect', () => {
    const c = loadConfig();
    assert.deepEqual(c.stt.models.map((m) => m.dialect), ['unified', 'deepgram-style', 'dual', 'dual', 'dual', 'dual']);
    assert.ok(c.stt.models.every((m) => m.engine === 'pocketsphinx'), 'a fresh install serves every code on the embedded engine');
    assert.equal(c.stt.models.find((m) => m.code === 'slng/deepgram/nova:3-hi')?.language, 'hi');
    assert.equal(c.limits.maxFrameBytes, 1024 * 1024);
    assert.equal(c.limits.idleTimeoutSeconds, 30);
  });
  it('loads a catalogue file and rejects bad ones with readable messages', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vg-cfg-'));
    try {
      const f = path.join(dir, 'c.json');
      writeFileSync(f, JSON.stringify({ stt: { models: [{ code: 'acme/pocketsphinx:fast', engine: 'pocketsphinx', dialect: 'deepgram-style' }] }, limits: { idleTimeoutSeconds: 5 } }));
      const c = loadConfig(f);
      assert.equal(c.stt.models[0]!.code, 'acme/pocketsphinx:fast');
      assert.equal(c.limits.idleTimeoutSeconds, 5);
      writeFileSync(f, JSON.stringify({ stt: { models: [{ code: 'no-slash', engine: 'x' }] } }));
      assert.throws(() => loadConfig(f), /model code/);
      writeFileSync(f, '{');
      assert.throws(() => loadConfig(f), /not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
