// Tokens (issue, use, revoke), malformed Authorization headers on the public routes, the
// operator token, and a worker started without ADMIN_TOKEN.
//
// The worker throttles failed authentication (AUTH_FAILURES: 30 a minute per client, and
// miniflare enforces it locally), so the 401 cases are spread over two workers and each
// sees well under 30 failures.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCodeError, assertCors, assertPlainError } from '../support/assertions.mjs';
import { admin, pub, rawRequest, req } from '../support/client.mjs';
import { issueToken, mustRegister, newUser, setupUser } from '../support/fixtures.mjs';
import { ADMIN_TOKEN, startWorker } from '../support/server.mjs';

let wA; // Kling malformed headers + operator auth
let wB; // Dreamina malformed headers + token lifecycle
let wNoAdmin; // no ADMIN_TOKEN at all
before(async () => {
  [wA, wB, wNoAdmin] = await Promise.all([startWorker(), startWorker(), startWorker({ adminToken: null })]);
});
after(async () => {
  await Promise.all([wA?.stop(), wB?.stop(), wNoAdmin?.stop()]);
});

const KLING_401 = { error: 'Unauthorized', code: 401 };
const DREAMINA_401 = { error: 'Unauthorized' };

describe('token issue', () => {
  test('201 {"token","user"}; sk_ + 43 base64url chars; a new token every time', async () => {
    const user = newUser();
    const r = await admin(wB.url, 'POST', '/admin/v1/tokens', { user });
    assert.equal(r.status, 201);
    assert.deepEqual(Object.keys(r.json).sort(), ['token', 'user']);
    assert.equal(r.json.user, user);
    assert.match(r.json.token, /^sk_[A-Za-z0-9_-]{43}$/);
    const again = await issueToken(wB.url, user);
    assert.notEqual(again, r.json.token);
    // Both tokens work, for both providers.
    for (const t of [r.json.token, again]) {
      assert.equal((await pub(wB.url, t, 'GET', '/v1/kling/scheduler')).status, 200);
      assert.equal((await pub(wB.url, t, 'GET', '/v1/dreamina/scheduler')).status, 200);
    }
  });

  test('a user id of 64 chars [A-Za-z0-9_-] is accepted', async () => {
    const user = 'A-z_9'.repeat(12) + 'abcd';
    assert.equal(user.length, 64);
    await issueToken(wB.url, user);
  });

  for (const [name, body] of [
    ['user with a space', { user: 'bad user' }],
    ['user empty', { user: '' }],
    ['user 65 chars', { user: 'a'.repeat(65) }],
    ['user with a slash', { user: 'a/b' }],
    ['user a number', { user: 12345 }],
    ['user null', { user: null }],
    ['no user', {}],
    ['array body', ['12345']],
  ]) {
    test(`issue: ${name} -> 400`, async () => {
      const r = await admin(wB.url, 'POST', '/admin/v1/tokens', body);
      assertCodeError(r, 400);
    });
  }

  test('issue: body that is not JSON -> 400', async () => {
    const r = await admin(wB.url, 'POST', '/admin/v1/tokens', '{"user": ');
    assertCodeError(r, 400);
  });
});

describe('token revoke', () => {
  test('revoke -> 204, then 401 on both providers; again -> 404; the other token still works', async () => {
    const user = newUser();
    const t1 = await issueToken(wB.url, user);
    const t2 = await issueToken(wB.url, user);
    const r = await admin(wB.url, 'POST', '/admin/v1/tokens/revoke', { token: t1 });
    assert.equal(r.status, 204);
    assert.equal(r.text, '');

    const k = await pub(wB.url, t1, 'GET', '/v1/kling/scheduler');
    assert.equal(k.status, 401);
    assert.deepEqual(k.json, KLING_401);
    const d = await pub(wB.url, t1, 'GET', '/v1/dreamina/scheduler');
    assert.equal(d.status, 401);
    assert.deepEqual(d.json, DREAMINA_401);

    assert.equal((await pub(wB.url, t2, 'GET', '/v1/kling/scheduler')).status, 200);

    const again = await admin(wB.url, 'POST', '/admin/v1/tokens/revoke', { token: t1 });
    assertCodeError(again, 404);
  });

  test('revoke an unknown token -> 404', async () => {
    const r = await admin(wB.url, 'POST', '/admin/v1/tokens/revoke', {
      token: 'sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    });
    assertCodeError(r, 404);
  });

  for (const [name, body] of [
    ['no token field', {}],
    ['token a number', { token: 5 }],
    ['not an object', 'null'],
  ]) {
    test(`revoke: ${name} -> 400`, async () => {
      const r = await admin(wB.url, 'POST', '/admin/v1/tokens/revoke', body);
      assertCodeError(r, 400);
    });
  }
});

// Authorization header variants that must be a 401 (in the provider's shape).
function badAuthCases() {
  return [
    ['no Authorization header', undefined],
    ['no scheme (bare token)', 'TOKEN'],
    ['Basic scheme', 'Basic dXNlcjpwYXNz'],
    ['Bearer without a token', 'Bearer'],
    ['Bearer + 10 KB token', 'Bearer ' + 'a'.repeat(10 * 1024)],
    ['Bearer + 513-char token', 'Bearer sk_' + 'a'.repeat(510)],
    ['unknown token', 'Bearer sk_unknownunknownunknownunknownunknownunkno'],
    ['two words after Bearer', 'Bearer TOKEN extra'],
  ];
}

for (const [provider, path, body401, which] of [
  ['kling', '/v1/kling/scheduler', KLING_401, () => wA],
  ['dreamina', '/v1/dreamina/scheduler', DREAMINA_401, () => wB],
]) {
  describe(`${provider}: Authorization header parsing`, () => {
    let token;
    before(async () => {
      token = (await setupUser(which().url)).token;
    });

    for (const [name, header] of badAuthCases()) {
      test(`${name} -> 401 ${JSON.stringify(body401)}`, async () => {
        const w = which();
        const headers = {};
        if (header !== undefined) headers.authorization = header.replace('TOKEN', token);
        const r = await req(w.url, 'GET', path, { headers });
        assert.equal(r.status, 401, r.text);
        assert.deepEqual(r.json, body401);
        assertCors(r);
      });
    }

    test('non-ASCII (UTF-8) token -> 401, not 5xx', async () => {
      const w = which();
      const { port } = new URL(w.url);
      const value = Buffer.from('Bearer tökén-✓', 'utf8').toString('latin1');
      const r = await rawRequest(
        w.url,
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${value}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(r.status, 401, r.text);
      assert.deepEqual(r.json, body401);
    });

    for (const [name, header] of [
      ['lower-case "bearer"', 'bearer TOKEN'],
      ['upper-case "BEARER"', 'BEARER TOKEN'],
      ['extra spaces between scheme and token', 'Bearer     TOKEN'],
    ]) {
      test(`${name} works`, async () => {
        const w = which();
        const r = await req(w.url, 'GET', path, { headers: { authorization: header.replace('TOKEN', token) } });
        assert.equal(r.status, 200, r.text);
        assertCors(r);
      });
    }

    test('surrounding white space works (raw request)', async () => {
      const w = which();
      const { port } = new URL(w.url);
      const r = await rawRequest(
        w.url,
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization:    Bearer ${token}   \r\nConnection: close\r\n\r\n`,
      );
      assert.equal(r.status, 200, r.text);
    });

    test('the token also works on /available and DELETE (404, not 401)', async () => {
      const w = which();
      assert.equal((await pub(w.url, token, 'GET', `${path}/available`)).status, 200);
      const d = await pub(w.url, token, 'DELETE', `${path}/12345`);
      assert.equal(d.status, 404, d.text);
    });

    test('authentication comes before validation: DELETE of a bad id without a token -> 401', async () => {
      const w = which();
      const r = await req(w.url, 'DELETE', `${path}/not-a-number`);
      assert.equal(r.status, 401, r.text);
      assert.deepEqual(r.json, body401);
    });

    test('401 on /available and DELETE too, in the provider shape', async () => {
      const w = which();
      const a = await req(w.url, 'GET', `${path}/available`);
      assert.equal(a.status, 401);
      assert.deepEqual(a.json, body401);
      const d = await req(w.url, 'DELETE', `${path}/12345`, { headers: { authorization: 'Bearer nope' } });
      assert.equal(d.status, 401);
      assert.deepEqual(d.json, body401);
    });
  });
}

describe('operator token', () => {
  const routes = (user) => [
    ['POST', '/admin/v1/tokens', { user }],
    ['PUT', `/admin/v1/users/${user}/kling/accounts/a%40x.com`, { maxJobs: 1 }],
    ['GET', `/admin/v1/users/${user}/dreamina/accounts`, undefined],
    ['POST', `/admin/v1/users/${user}/kling/jobs`, { id: 1 }],
  ];

  test('missing admin token -> 401 {"error":"Unauthorized","code":401}', async () => {
    const r = await req(wA.url, 'POST', '/admin/v1/tokens', { body: { user: 'x' } });
    assertCodeError(r, 401, 'Unauthorized');
  });

  test('wrong admin token -> 401 (also a prefix of it, and a longer one)', async () => {
    for (const t of ['wrong', ADMIN_TOKEN.slice(0, -1), ADMIN_TOKEN + 'x']) {
      const r = await admin(wA.url, 'GET', '/admin/v1/users/x/kling/accounts', undefined, { adminToken: t });
      assertCodeError(r, 401, 'Unauthorized');
    }
  });

  test("a user's token is not an operator token -> 401", async () => {
    const { token } = await setupUser(wA.url);
    const r = await admin(wA.url, 'POST', '/admin/v1/tokens', { user: 'x' }, { adminToken: token });
    assertCodeError(r, 401, 'Unauthorized');
  });

  test('the operator token is not a user token -> 401 on a public route', async () => {
    const r = await pub(wB.url, ADMIN_TOKEN, 'GET', '/v1/dreamina/scheduler');
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, DREAMINA_401);
  });

  test('scheme case and extra spaces work for the operator token too', async () => {
    const r = await req(wA.url, 'GET', '/admin/v1/users/x/kling/accounts', {
      headers: { authorization: `bearer   ${ADMIN_TOKEN}` },
    });
    assert.equal(r.status, 200, r.text);
  });

  test('worker without ADMIN_TOKEN: every operator route -> 403, with or without a token', async () => {
    const user = newUser();
    for (const [method, p, body] of routes(user)) {
      for (const token of [undefined, ADMIN_TOKEN, 'anything']) {
        const r = await req(wNoAdmin.url, method, p, { body, token });
        assertCodeError(r, 403, 'Operator API disabled: ADMIN_TOKEN is not set');
      }
    }
    const revoke = await req(wNoAdmin.url, 'POST', '/admin/v1/tokens/revoke', { body: { token: 'x' } });
    assertCodeError(revoke, 403);
  });

  test('worker without ADMIN_TOKEN: public routes still answer (401 for an unknown token)', async () => {
    const r = await pub(wNoAdmin.url, 'sk_nope', 'GET', '/v1/kling/scheduler');
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, KLING_401);
  });
});

describe('tokens and jobs', () => {
  test('a token only shows its own user: a second user with the same account sees nothing', async () => {
    const a = await setupUser(wB.url, { dreamina: { 'US:a@x.com': 2 } });
    const b = await setupUser(wB.url, { dreamina: { 'US:a@x.com': 2 } });
    await mustRegister(wB.url, a.user, 'dreamina', { submitId: 's', model: 'm' });
    const rb = await pub(wB.url, b.token, 'GET', '/v1/dreamina/scheduler');
    assert.deepEqual(rb.json, { executing: {}, total: 0 });
    const ra = await pub(wB.url, a.token, 'GET', '/v1/dreamina/scheduler');
    assert.equal(ra.json.total, 1);
  });

  test('a 401 is the plain provider shape (assertPlainError sanity)', async () => {
    const r = await req(wB.url, 'GET', '/v1/dreamina/scheduler/available');
    assertPlainError(r, 401, 'Unauthorized');
  });
});

describe('failed-authentication throttling (AUTH_FAILURES, 30 a minute)', () => {
  // Runs last, on the worker without ADMIN_TOKEN (the earlier tests spent one failure
  // there). The contract fixes no status for a throttled client; it must stay a 4xx in
  // the provider's shape, never a 5xx.
  test('40 unknown tokens in a row: each a 401 or 429 in the Kling shape, never 5xx', async () => {
    const statuses = [];
    for (let i = 0; i < 40; i++) {
      const r = await pub(wNoAdmin.url, `sk_unknown_${i}`, 'GET', '/v1/kling/scheduler');
      statuses.push(r.status);
      assert.ok([401, 429].includes(r.status), `#${i}: ${r.status} ${r.text}`);
      assert.deepEqual(Object.keys(r.json).sort(), ['code', 'error']);
      assert.equal(r.json.code, r.status);
    }
    assert.equal(statuses[0], 401);
  });
});
