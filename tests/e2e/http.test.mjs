// HTTP surface: unknown paths (404 JSON), wrong methods (405 + Allow), CORS preflight and
// headers, content types.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertCodeError,
  assertCors,
  assertKeys,
  assertPlainError,
} from '../support/assertions.mjs';
import { pub, req } from '../support/client.mjs';
import { setupUser } from '../support/fixtures.mjs';
import { ADMIN_TOKEN, startWorker } from '../support/server.mjs';

let w;
let token;
let user;
before(async () => {
  w = await startWorker();
  ({ user, token } = await setupUser(w.url, { kling: { 'a@x.com': 1 } }));
});
after(async () => {
  await w?.stop();
});

function allowSet(r) {
  return new Set((r.headers.get('allow') || '').split(',').map((m) => m.trim().toUpperCase()).filter(Boolean));
}

describe('GET / is the live view page', () => {
  test('200 text/html, no external resources', async () => {
    const r = await req(w.url, 'GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') || '', /^text\/html/);
    assert.match(r.text, /<!doctype html>/i);
    assert.ok(!/(src|href)=["']https?:/i.test(r.text), 'the page loads nothing from elsewhere');
  });
});

describe('unknown paths -> 404 JSON', () => {
  for (const p of ['/nope', '/index.html', '/v1', '/v1/kling', '/v1/kling/nope', '/v1/runway/scheduler', '/admin/v1/nope', '/admin/v1/users/x/kling', '/v1/kling/scheduler/1/extra', '/admin/v1/users/x/kling/accounts/a%40x.com/extra']) {
    test(`GET ${p} -> 404 {"error":"Not found","code":404}`, async () => {
      const r = await req(w.url, 'GET', p, { token: p.startsWith('/admin/') ? ADMIN_TOKEN : token });
      assertCodeError(r, 404);
      assert.equal(r.json.error, 'Not found');
      assert.match(r.headers.get('content-type') || '', /^application\/json/);
    });
  }

  for (const p of ['/v1/dreamina/nope', '/v1/dreamina/scheduler/x/y', '/v1/dreamina']) {
    test(`GET ${p} -> 404 in the Dreamina shape {"error"}`, async () => {
      const r = await req(w.url, 'GET', p, { token });
      if (p === '/v1/dreamina') {
        // Not under /v1/dreamina/: either shape is acceptable, but it is a JSON 404.
        assert.equal(r.status, 404);
        assert.equal(typeof r.json.error, 'string');
        return;
      }
      assertPlainError(r, 404);
    });
  }

  test('an unknown path without a token is still a 404 (not a 5xx)', async () => {
    const r = await req(w.url, 'POST', '/whatever/else');
    assert.equal(r.status, 404);
    assert.equal(typeof r.json.error, 'string');
  });
});

describe('known path, other method -> 405 JSON with Allow', () => {
  const cases = [
    // [method, path, methods that must be in Allow, shape]
    ['POST', '/v1/kling/scheduler', ['GET', 'OPTIONS'], 'code'],
    ['PUT', '/v1/kling/scheduler/available', ['GET', 'OPTIONS'], 'code'],
    ['GET', '/v1/kling/scheduler/123', ['DELETE', 'OPTIONS'], 'code'],
    ['POST', '/v1/dreamina/scheduler', ['GET', 'OPTIONS'], 'plain'],
    // (DELETE .../available is not here: "available" is also a valid Dreamina jobid.)
    ['PUT', '/v1/dreamina/scheduler/available', ['OPTIONS'], 'plain'],
    ['PATCH', '/v1/dreamina/scheduler/some-job', ['DELETE', 'OPTIONS'], 'plain'],
    ['GET', '/admin/v1/tokens', ['POST'], 'code'],
    ['GET', '/admin/v1/tokens/revoke', ['POST'], 'code'],
    ['POST', '/admin/v1/users/USER/kling/accounts', ['GET'], 'code'],
    ['POST', '/admin/v1/users/USER/kling/accounts/a%40x.com', ['PUT', 'DELETE'], 'code'],
    ['DELETE', '/admin/v1/users/USER/kling/jobs', ['GET', 'POST'], 'code'],
    // Methods the platform does not know are never served as another method.
    ['PROPFIND', '/v1/kling/scheduler', ['GET', 'OPTIONS'], 'code'],
    ['PROPFIND', '/v1/dreamina/scheduler/available', ['GET'], 'plain'],
    ['PROPFIND', '/admin/v1/users/USER/kling/accounts', ['GET'], 'code'],
    ['MKCOL', '/admin/v1/users/USER/kling/jobs', ['GET', 'POST'], 'code'],
    ['GET', '/admin/v1/users/USER/kling/jobs/1/complete', ['POST'], 'code'],
  ];
  for (const [method, rawPath, allow, shape] of cases) {
    test(`${method} ${rawPath} -> 405, Allow ⊇ ${allow.join(', ')}`, async () => {
      const p = rawPath.replace('USER', user);
      const t = p.startsWith('/admin/') ? ADMIN_TOKEN : token;
      const r = await req(w.url, method, p, { token: t, body: method === 'GET' ? undefined : {} });
      assert.equal(r.status, 405, r.text);
      const got = allowSet(r);
      for (const m of allow) assert.ok(got.has(m), `Allow "${r.headers.get('allow')}" lacks ${m}`);
      assert.ok(!got.has(method), `Allow "${r.headers.get('allow')}" must not list ${method}`);
      if (shape === 'code') assertCodeError(r, 405, 'Method not allowed');
      else assertPlainError(r, 405, 'Method not allowed');
      if (p.startsWith('/v1/')) assertCors(r);
    });
  }
});

describe('CORS', () => {
  for (const p of ['/v1/kling/scheduler', '/v1/kling/scheduler/available', '/v1/kling/scheduler/123', '/v1/dreamina/scheduler', '/v1/dreamina/scheduler/available', '/v1/dreamina/scheduler/j%3Ax']) {
    test(`OPTIONS ${p} (preflight, no token) -> 204 with the CORS headers`, async () => {
      const r = await req(w.url, 'OPTIONS', p, {
        headers: {
          origin: 'https://app.example.com',
          'access-control-request-method': p.endsWith('123') || p.endsWith('x') ? 'DELETE' : 'GET',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      assert.equal(r.status, 204, r.text);
      assertCors(r);
      assert.equal(r.headers.get('access-control-allow-methods'), 'GET, DELETE, OPTIONS');
      const allowHeaders = (r.headers.get('access-control-allow-headers') || '').toLowerCase().split(',').map((s) => s.trim());
      assert.ok(allowHeaders.includes('authorization') && allowHeaders.includes('content-type'), r.headers.get('access-control-allow-headers'));
      assert.equal(r.headers.get('access-control-max-age'), '86400');
    });
  }

  test('public responses carry Access-Control-Allow-Origin: * (200, 401, 404, 400, 204)', async () => {
    assertCors(await pub(w.url, token, 'GET', '/v1/kling/scheduler'));
    assertCors(await pub(w.url, token, 'GET', '/v1/dreamina/scheduler/available'));
    assertCors(await req(w.url, 'GET', '/v1/kling/scheduler'));
    assertCors(await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/5'));
    assertCors(await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/abc'));
    assertCors(await pub(w.url, token, 'DELETE', '/v1/dreamina/scheduler/none'));
  });

  test('a real cross-origin GET with an Origin header works and gets ACAO *', async () => {
    const r = await req(w.url, 'GET', '/v1/kling/scheduler', { token, headers: { origin: 'https://app.example.com' } });
    assert.equal(r.status, 200);
    assertCors(r);
  });
});

describe('responses', () => {
  test('JSON responses are application/json; errors too', async () => {
    for (const r of [
      await pub(w.url, token, 'GET', '/v1/kling/scheduler'),
      await pub(w.url, token, 'GET', '/v1/dreamina/scheduler'),
      await req(w.url, 'GET', '/v1/dreamina/scheduler'),
      await req(w.url, 'GET', `/admin/v1/users/${user}/kling/accounts`, { token: ADMIN_TOKEN }),
      await req(w.url, 'GET', '/admin/v1/users/x/kling/accounts'),
    ]) {
      assert.match(r.headers.get('content-type') || '', /^application\/json/, r.text);
      assert.ok(r.json !== undefined, `JSON body: ${r.text}`);
    }
  });

  test('a query string does not break routing', async () => {
    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler?x=1');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, []);
    const d = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler?foo=bar&x');
    assert.deepEqual(d.json, { executing: {}, total: 0 });
  });

  test('operator 401 is {"error":"Unauthorized","code":401}', async () => {
    const r = await req(w.url, 'GET', `/admin/v1/users/${user}/kling/accounts`);
    assertCodeError(r, 401, 'Unauthorized');
    assertKeys(r.json, ['error', 'code']);
  });
});
