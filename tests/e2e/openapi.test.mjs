// Keeps openapi.yaml honest against the running worker (the router side, every route
// documented and every documented operation a route, is tests/openapi_routes.rs, run
// natively by `cargo test`):
//   (b) every documented (path, method, status) is driven here, per provider, and its
//       body and headers validated against the documented schema (a small JSON-schema
//       validator for the subset the document uses); a documented response nobody
//       produced fails. The one exception is the 503 of the operations that call a
//       Durable Object: nothing outside the worker can make an object fail to answer, so
//       those are listed as skipped, and checked to be on exactly those operations.
//   (c) GET /openapi.json is the YAML: paths, methods, statuses, operationIds and
//       component names read from the YAML text equal the served JSON's.
//
// OPENAPI_DOC_JSON=<file> validates (b) against that JSON instead of the served one
// (openapi.yaml converted by hand, before a rebuild); (c) still compares the served one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { req } from '../support/client.mjs';
import {
  clientAddresses,
  completeJob,
  issueToken,
  mustRegister,
  putAccount,
  setupUser,
} from '../support/fixtures.mjs';
import { startReceiver } from '../support/receiver.mjs';
import { ADMIN_TOKEN, ROOT, sleep, startWorker } from '../support/server.mjs';
import { OPCODE, decodeFrame, encodeFrame } from '../support/websocket-frames.mjs';

const YAML_TEXT = fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8');
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'patch', 'head'];

// ---------------------------------------------------------------------------------------
// A JSON-schema validator for the subset the document uses. Any other keyword that
// constrains values is refused, so the document cannot drift outside what is checked.

const ANNOTATIONS = new Set(['description', 'example', 'examples', 'title', 'format', 'deprecated']);
const KEYWORDS = new Set([
  '$ref', 'type', 'properties', 'required', 'additionalProperties', 'items', 'enum',
  'pattern', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'oneOf',
]);

function resolveRef(doc, ref) {
  assert.ok(ref.startsWith('#/'), `only local $refs: ${ref}`);
  let node = doc;
  for (const part of ref.slice(2).split('/')) {
    node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    assert.ok(node !== undefined, `unresolvable $ref ${ref}`);
  }
  return node;
}

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (Number.isInteger(v)) return 'integer';
  return typeof v; // string, number, boolean, object
}

/**
 * Returns a list of error strings (empty when `value` is valid). A `$ref` with sibling
 * keywords applies both (JSON Schema 2020-12, OpenAPI 3.1).
 */
export function validate(doc, schema, value, at = '$') {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [`${at}: no value allowed`];
  for (const k of Object.keys(schema)) {
    if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`validator: unsupported keyword ${k} at ${at}`);
  }
  if (schema.$ref) {
    const { $ref, ...rest } = schema;
    return [...validate(doc, resolveRef(doc, $ref), value, at), ...validate(doc, rest, value, at)];
  }
  const errors = [];
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const ok = types.some((ty) => ty === t || (ty === 'number' && t === 'integer'));
    if (!ok) return [`${at}: expected ${types.join('|')}, got ${t} ${JSON.stringify(value)?.slice(0, 80)}`];
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  }
  if (t === 'string') {
    const len = [...value].length;
    if (schema.minLength !== undefined && len < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && len > schema.maxLength) errors.push(`${at}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      errors.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
    }
  }
  if (t === 'integer' || t === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: ${value} < ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: ${value} > ${schema.maximum}`);
  }
  if (t === 'array') {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.items !== undefined) value.forEach((v, i) => errors.push(...validate(doc, schema.items, v, `${at}[${i}]`)));
  }
  if (t === 'object') {
    const props = schema.properties || {};
    for (const r of schema.required || []) if (!(r in value)) errors.push(`${at}: missing required ${r}`);
    for (const [k, v] of Object.entries(value)) {
      if (k in props) errors.push(...validate(doc, props[k], v, `${at}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${at}: unexpected property ${k}`);
      else if (schema.additionalProperties !== undefined) {
        errors.push(...validate(doc, schema.additionalProperties, v, `${at}.${k}`));
      }
    }
  }
  if (schema.oneOf) {
    const matches = schema.oneOf.filter((s) => validate(doc, s, value, at).length === 0).length;
    if (matches !== 1) errors.push(`${at}: matches ${matches} of the oneOf schemas, not exactly 1`);
  }
  return errors;
}

// ---------------------------------------------------------------------------------------
// Self-test of the validator, so a lenient validator cannot make every check pass.

describe('the subset JSON-schema validator', () => {
  const doc = {
    components: {
      schemas: {
        N: { type: 'integer', minimum: 1, maximum: 3 },
        O: { type: 'object', required: ['a'], additionalProperties: false, properties: { a: {}, p: { type: 'object' } } },
      },
    },
  };
  const cases = [
    [{ type: 'string' }, 'x', true],
    [{ type: 'string' }, 1, false],
    [{ type: 'integer' }, 1.5, false],
    [{ type: 'number' }, 1, true],
    [{ $ref: '#/components/schemas/N' }, 2, true],
    [{ $ref: '#/components/schemas/N' }, 4, false],
    [{ $ref: '#/components/schemas/N' }, 0, false],
    [{ enum: ['a'] }, 'b', false],
    [{ type: 'string', pattern: '^a+$' }, 'aab', false],
    [{ type: 'string', minLength: 2 }, 'a', false],
    [{ type: 'string', maxLength: 1 }, 'ab', false],
    [{ type: 'array', items: { type: 'string' } }, ['a', 1], false],
    [{ type: 'array', minItems: 1 }, [], false],
    [{ type: 'object', required: ['a'] }, {}, false],
    [{ type: 'object', properties: { a: {} }, additionalProperties: false }, { b: 1 }, false],
    [{ type: 'object', additionalProperties: { type: 'integer' } }, { b: 'x' }, false],
    [{ type: 'object', additionalProperties: { type: 'integer' } }, { b: 1 }, true],
    [{ oneOf: [{ type: 'string' }, { type: 'integer' }] }, null, false],
    [{ oneOf: [{ type: 'string' }, { type: 'integer' }] }, 'x', true],
    [{ oneOf: [{ required: ['a'] }, { required: ['b'] }] }, { a: 1, b: 2 }, false],
    [{ $ref: '#/components/schemas/O', properties: { p: { required: ['q'] } } }, { a: 1, p: {} }, false],
    [{ $ref: '#/components/schemas/O', properties: { p: { required: ['q'] } } }, { a: 1, p: { q: 1 } }, true],
    [{ $ref: '#/components/schemas/O', properties: { p: { required: ['q'] } } }, { a: 1, z: 1 }, false],
    [true, { anything: 1 }, true],
  ];
  for (const [schema, value, ok] of cases) {
    test(`${JSON.stringify(schema)} ${ok ? 'accepts' : 'refuses'} ${JSON.stringify(value)}`, () => {
      assert.equal(validate(doc, schema, value).length === 0, ok, validate(doc, schema, value).join('; '));
    });
  }
  test('an unsupported keyword is an error, not silently ignored', () => {
    assert.throws(() => validate(doc, { type: 'string', const: 'x' }, 'x'), /unsupported keyword const/);
  });
});

// ---------------------------------------------------------------------------------------
// (c) structural facts of the YAML text (no YAML parser: the document's layout is fixed,
// two-space indentation, so the lines that carry these facts are found by indentation).

function yamlFacts(text) {
  const lines = text.split('\n');
  const facts = { openapi: null, version: null, ops: new Map(), operationIds: [], schemas: [], responses: [] };
  let section = null;
  let pathKey = null;
  let op = null;
  let inResponses = false;
  let info = false;
  for (const line of lines) {
    let m;
    if ((m = /^openapi: (\S+)$/.exec(line))) facts.openapi = m[1];
    if (/^\S/.test(line)) {
      section = line.replace(/:.*$/, '');
      info = section === 'info';
      continue;
    }
    if (info && (m = /^ {2}version: (\S+)$/.exec(line))) facts.version = m[1];
    if (section === 'paths') {
      if ((m = /^ {2}(\/\S*):$/.exec(line))) {
        pathKey = m[1];
        op = null;
        continue;
      }
      if ((m = /^ {4}([a-z]+):$/.exec(line)) && METHODS.includes(m[1])) {
        op = `${m[1].toUpperCase()} ${pathKey}`;
        facts.ops.set(op, []);
        inResponses = false;
        continue;
      }
      if (/^ {4}\S/.test(line)) op = null;
      if (op && (m = /^ {6}operationId: (\S+)$/.exec(line))) facts.operationIds.push(m[1]);
      if (op && /^ {6}responses:$/.test(line)) inResponses = true;
      else if (op && /^ {6}\S/.test(line)) inResponses = false;
      if (op && inResponses && (m = /^ {8}'(\d{3})':$/.exec(line))) facts.ops.get(op).push(m[1]);
    }
    if (section === 'components') {
      if ((m = /^ {2}(\w+):$/.exec(line))) facts.sub = m[1];
      else if ((m = /^ {4}(\w+):$/.exec(line))) {
        if (facts.sub === 'schemas') facts.schemas.push(m[1]);
        if (facts.sub === 'responses') facts.responses.push(m[1]);
      }
    }
  }
  return facts;
}

/** `key=value` for the scalar leaves that carry constraints, from the YAML text. */
const LEAF_KEYS = ['$ref', 'pattern', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'type', 'operationId', 'required'];
function yamlLeaves(text) {
  const out = [];
  const re = new RegExp(`^\\s*(?:- )?(${LEAF_KEYS.map((k) => k.replace('$', '\\$')).join('|')}): (.+)$`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    let v = m[2];
    if (/^'.*'$/.test(v)) v = v.slice(1, -1).replace(/''/g, "'");
    else if (/^\[.*\]$/.test(v)) v = v.slice(1, -1).split(',').map((x) => x.trim()).join(',');
    out.push(`${m[1]}=${v}`);
  }
  return out.sort();
}
function jsonLeaves(value, out = []) {
  if (Array.isArray(value)) value.forEach((v) => jsonLeaves(v, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (LEAF_KEYS.includes(k) && (typeof v !== 'object' || (Array.isArray(v) && v.every((x) => typeof x === 'string')))) {
        out.push(`${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
      } else jsonLeaves(v, out);
    }
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------
// The workers and the data the scenarios need.

const MAX_ACCOUNTS = 5;
let w; // ADMIN_TOKEN set, MAX_ACCOUNTS 5, one retry 1 s after the first attempt
let off; // no ADMIN_TOKEN: operator routes answer 403
let receiver; // answers 200: deliveries to it end as `delivered`
let served; // GET /openapi.json
let doc; // what (b) validates against: the served document (or OPENAPI_DOC_JSON)
let user;
let token;
const nextIp = clientAddresses('198.51');

/** A request from a fresh client address, so the failed-auth throttle stays out of the way. */
function call(method, p, { token: t, body, headers = {}, worker = w } = {}) {
  return req(worker.url, method, p, {
    token: t,
    body,
    headers: { 'cf-connecting-ip': nextIp(), ...headers },
  });
}
const adm = (method, p, body, opts = {}) => call(method, p, { token: ADMIN_TOKEN, body, ...opts });
const big = () => JSON.stringify({ user: 'x', pad: 'x'.repeat(1024 * 1024 + 10) });

/** Failed authentications from one address until the throttle answers 429. */
const THROTTLED_IP = '203.0.113.99';
let throttled;
function throttle() {
  throttled ??= (async () => {
    for (let i = 0; i < 60; i++) {
      const r = await req(w.url, 'GET', '/v1/kling/scheduler', { token: 'nope', headers: { 'cf-connecting-ip': THROTTLED_IP } });
      if (r.status === 429) return;
      assert.equal(r.status, 401);
    }
    assert.fail('60 failed authentications from one address never gave a 429');
  })();
  return throttled;
}
async function throttledCall(method, p) {
  await throttle();
  return req(w.url, method, p, { token: 'still-wrong', headers: { 'cf-connecting-ip': THROTTLED_IP } });
}

/**
 * `GET …/live` as a WebSocket handshake (node:http, no client library). Resolves with
 * { status, headers, text: '', json: undefined, socket } for a 101 (the socket is left
 * open) or the plain answer otherwise.
 */
function upgrade(p) {
  const { hostname, port } = new URL(w.url);
  return new Promise((resolve, reject) => {
    const r = http.request({
      host: hostname,
      port,
      path: p,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
        'Sec-WebSocket-Version': '13',
      },
    });
    r.setTimeout(30_000, () => r.destroy(new Error('upgrade timed out')));
    r.on('upgrade', (res, socket, head) => {
      resolve({ status: res.statusCode, headers: new Headers(res.headers), text: '', json: undefined, socket, head });
    });
    r.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json: undefined }));
    });
    r.on('error', reject);
    r.end();
  });
}

/** Sends one text frame (masked, as a client must). */
function sendText(socket, text) {
  socket.write(encodeFrame(OPCODE.text, text, { masked: true }));
}

/** Reads the first frame the server sends: its text, or an error for a close. */
function firstText(socket, head) {
  return new Promise((resolve, reject) => {
    let buf = head?.length ? Buffer.from(head) : Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no message within 10 s')), 10_000);
    const tryParse = () => {
      const f = decodeFrame(buf);
      if (!f) return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (f.opcode === OPCODE.close) {
        reject(new Error(`closed: ${f.data.length >= 2 ? f.data.readUInt16BE(0) : ''} ${f.data.subarray(2)}`));
      } else {
        resolve(f.data.toString('utf8'));
      }
    };
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      tryParse();
    };
    socket.on('data', onData);
    tryParse();
  });
}

const enc = encodeURIComponent;
let seq = 1000;
const nextId = () => ++seq * 1000 + Math.floor(Math.random() * 1000);
const usersPath = (u, provider, rest) => `/admin/v1/users/${u}/${provider}/${rest}`;
const DEAD_HOOK = 'http://127.0.0.1:9/hook';

/**
 * What the scenarios need to know of each provider: its public path and item
 * parameter, accounts (the user's two, one shown paused, one added by PUT, one
 * removed, one never configured, one invalid), a registration body, how a job's
 * path id is read from its registration answer, and the `T` of its component names.
 */
const PROVIDERS = {
  kling: {
    T: 'Kling', base: '/v1/kling/scheduler', item: '{task_id}', key: 'email', limit: 50,
    accts: ['a@x.com', 'b@x.com'], shown: 'shown@x.com', other: 'other@x.com', gone: 'gone@x.com', never: 'never@x.com',
    body: () => ({ id: nextId() }), idOf: (j) => String(j.id), badId: 'abc', notRunning: '987654321',
  },
  dreamina: {
    T: 'Dreamina', base: '/v1/dreamina/scheduler', item: '{jobid}', key: 'account', limit: 50,
    accts: ['US:a@x.com', 'US:b@x.com'], shown: 'JP:shown@x.com', other: 'EU:other@x.com', gone: 'US:gone@x.com', never: 'US:never@x.com',
    body: () => ({ submitId: `s-${nextId()}`, model: 'seedance-2.0' }), idOf: (j) => j.jobid, badId: '%zz', notRunning: enc('not:running@x'),
  },
  minimax: {
    T: 'Minimax', base: '/v1/minimax/scheduler', item: '{id}', key: 'account', limit: 10,
    accts: ['acct_a', 'acct_b'], shown: 'shown', other: 'other-1', gone: 'gone_1', never: 'never',
    body: () => ({ videoId: `v-${nextId()}` }), idOf: (j) => j.videoId ?? j.imageId, badId: '%zz', notRunning: 'v-not-running',
  },
  pixverse: {
    T: 'Pixverse', base: '/v2/pixverse/scheduler', item: '{id}', key: 'email', limit: 8,
    accts: ['a@x.com', 'b@x.com'], shown: 'shown@x.com', other: 'other@x.com', gone: 'gone@x.com', never: 'never@x.com',
    body: () => ({ id: `p-${nextId()}`, type: 'video' }), idOf: (j) => j.id, badId: '%zz', notRunning: 'p-not-running',
  },
  runwayml: {
    T: 'Runwayml', base: '/v1/runwayml/scheduler', item: '{id}', key: 'email', limit: 10,
    accts: ['a@x.com', 'b@x.com'], shown: 'shown@x.com', other: 'other@x.com', gone: 'gone@x.com', never: 'never@x.com',
    body: () => ({ taskId: `t-${nextId()}` }), idOf: (j) => j.taskId, badId: '%zz', notRunning: 't-not-running',
  },
};
const BAD_ACCOUNT = enc('not valid!'); // no provider's account rule takes it

/** One registered, executing job (with a replyUrl, so completing it queues a webhook). */
async function runningJob(provider, { u = user, replyUrl = DEAD_HOOK, extra = {} } = {}) {
  const job = await mustRegister(w.url, u, provider, { ...PROVIDERS[provider].body(), replyUrl, replyRef: 'ref-1', ...extra });
  return { id: PROVIDERS[provider].idOf(job), job };
}

/** Polls a webhooks page until `pred(rows)` holds (deliveries run on the objects' alarms). */
async function webhooksUntil(provider, query, pred, what) {
  let last;
  for (let i = 0; i < 60; i++) {
    last = await adm('GET', `${usersPath(user, provider, 'webhooks')}?${query}`);
    assert.equal(last.status, 200, last.text);
    if (pred(last.json)) return last;
    await sleep(500);
  }
  assert.fail(`${provider} webhooks ${query}: ${what} never happened: ${last.text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------
// (b) one scenario per documented (path, method, status). Path keys are the document's.
// A scenario returns the response to check; it may check more responses itself with
// checkResponse().

const SCENARIOS = {
  'GET /': { 200: () => call('GET', '/') },
  'GET /openapi.json': { 200: () => call('GET', '/openapi.json') },
};

/** Statuses no request from outside can produce, with the reason (listed as skipped). */
const UNPRODUCIBLE = {
  503: 'only a Durable Object that does not answer gives it; nothing outside the worker can cause that',
};

for (const [provider, P] of Object.entries(PROVIDERS)) {
  const { base, item } = P;
  const itemPath = `${base}/${item}`;
  const sample = provider === 'kling' ? '123' : 'some-job';
  SCENARIOS[`OPTIONS ${base}`] = { 204: () => call('OPTIONS', base) };
  SCENARIOS[`OPTIONS ${base}/available`] = { 204: () => call('OPTIONS', `${base}/available`) };
  SCENARIOS[`OPTIONS ${base}/live`] = { 204: () => call('OPTIONS', `${base}/live`) };
  SCENARIOS[`OPTIONS ${itemPath}`] = {
    204: () => call('OPTIONS', `${base}/${sample}`),
    400: () => call('OPTIONS', `${base}/%zz`),
  };
  SCENARIOS[`GET ${base}`] = {
    200: async () => {
      await runningJob(provider);
      if (provider === 'minimax') await runningJob(provider, { extra: { videoId: undefined, imageId: `i-${nextId()}` } });
      const r = await call('GET', base, { token });
      assert.ok(JSON.stringify(r.json).includes('ref-1') || provider === 'dreamina', `optional members listed: ${r.text.slice(0, 300)}`);
      return r;
    },
    401: () => call('GET', base),
    429: () => throttledCall('GET', base),
  };
  SCENARIOS[`GET ${base}/available`] = {
    200: async () => {
      await runningJob(provider);
      return call('GET', `${base}/available`, { token });
    },
    401: () => call('GET', `${base}/available`, { token: 'sk_unknown' }),
    429: () => throttledCall('GET', `${base}/available`),
  };
  SCENARIOS[`GET ${base}/live`] = {
    101: async () => {
      const r = await upgrade(`${base}/live`);
      assert.equal(r.status, 101, r.text);
      try {
        // The first message after the token is the available body, as documented.
        sendText(r.socket, JSON.stringify({ token }));
        const message = JSON.parse(await firstText(r.socket, r.head));
        assert.equal(message.type, 'available');
        const schema = resolveRef(doc, `#/components/responses/${P.T}Available`).content['application/json'].schema;
        assert.deepEqual(validate(doc, schema, message.body), [], JSON.stringify(message).slice(0, 400));
      } finally {
        r.socket.destroy();
      }
      return r;
    },
    426: () => call('GET', `${base}/live`, { token }),
  };
  SCENARIOS[`DELETE ${itemPath}`] = {
    204: async () => call('DELETE', `${base}/${enc((await runningJob(provider)).id)}`, { token }),
    400: () => call('DELETE', `${base}/${P.badId}`, { token }),
    401: () => call('DELETE', `${base}/${sample}`, { headers: { authorization: 'Basic abc' } }),
    404: () => call('DELETE', `${base}/${P.notRunning}`, { token }),
    429: () => throttledCall('DELETE', `${base}/${sample}`),
  };
}

SCENARIOS['POST /admin/v1/tokens'] = {
  201: () => adm('POST', '/admin/v1/tokens', { user: 'someone_1' }),
  400: () => adm('POST', '/admin/v1/tokens', { user: 'not valid!' }),
  401: () => call('POST', '/admin/v1/tokens', { token: 'wrong', body: { user: 'x' } }),
  403: () => call('POST', '/admin/v1/tokens', { token: ADMIN_TOKEN, body: { user: 'x' }, worker: off }),
  413: () => adm('POST', '/admin/v1/tokens', big()),
};
SCENARIOS['POST /admin/v1/tokens/revoke'] = {
  204: async () => adm('POST', '/admin/v1/tokens/revoke', { token: await issueToken(w.url, 'revokee') }),
  400: () => adm('POST', '/admin/v1/tokens/revoke', { token: 5 }),
  401: () => call('POST', '/admin/v1/tokens/revoke', { body: { token: 'x' } }),
  403: () => call('POST', '/admin/v1/tokens/revoke', { token: ADMIN_TOKEN, body: { token: 'x' }, worker: off }),
  404: () => adm('POST', '/admin/v1/tokens/revoke', { token: 'sk_never_issued' }),
  413: () => adm('POST', '/admin/v1/tokens/revoke', big()),
};

for (const [provider, P] of Object.entries(PROVIDERS)) {
  const K = (rest) => `/admin/v1/users/{user}/${provider}/${rest}`;
  const U = (rest, u = user) => usersPath(u, provider, rest);
  const acctPath = (a, rest = '') => U(`accounts/${enc(a)}${rest}`);
  const noAuth = (method, p, body) => call(method, p, { token: 'wrong', body });
  const disabled = (method, p, body) => call(method, p, { token: ADMIN_TOKEN, body, worker: off });

  SCENARIOS[`GET ${K('accounts')}`] = {
    200: async () => {
      // A paused account shows `pausedUntil` and `reason`.
      await putAccount(w.url, user, provider, P.shown, 2);
      const p = await adm('POST', acctPath(P.shown, '/pause'), { seconds: 3600, reason: 'quota' });
      assert.equal(p.status, 200, p.text);
      const r = await adm('GET', U('accounts'));
      assert.ok(r.json.some((row) => row.paused && row.pausedUntil && row.reason === 'quota'), r.text);
      return r;
    },
    400: () => adm('GET', U('accounts', 'bad%20user')),
    401: () => noAuth('GET', U('accounts')),
    403: () => disabled('GET', U('accounts')),
  };
  SCENARIOS[`PUT ${K('accounts/{account}')}`] = {
    200: () => adm('PUT', acctPath(P.other), { maxJobs: P.limit }),
    // One past the provider's own limit.
    400: () => adm('PUT', acctPath(P.other), { maxJobs: P.limit + 1 }),
    401: () => noAuth('PUT', acctPath(P.other), { maxJobs: 3 }),
    403: () => disabled('PUT', acctPath(P.other), { maxJobs: 3 }),
    409: async () => {
      const accounts = {};
      for (let i = 0; i < MAX_ACCOUNTS; i++) accounts[account(provider, i)] = 1;
      const { user: many } = await setupUser(w.url, { [provider]: accounts }, 'many');
      return adm('PUT', usersPath(many, provider, `accounts/${enc(account(provider, MAX_ACCOUNTS))}`), { maxJobs: 1 });
    },
    413: () => adm('PUT', acctPath(P.other), big()),
  };
  SCENARIOS[`DELETE ${K('accounts/{account}')}`] = {
    204: async () => {
      await putAccount(w.url, user, provider, P.gone, 2);
      return adm('DELETE', acctPath(P.gone));
    },
    400: () => adm('DELETE', U(`accounts/${BAD_ACCOUNT}`)),
    401: () => noAuth('DELETE', acctPath(P.accts[0])),
    403: () => disabled('DELETE', acctPath(P.accts[0])),
    404: () => adm('DELETE', acctPath(P.never)),
  };
  SCENARIOS[`POST ${K('accounts/{account}/pause')}`] = {
    200: async () => {
      await putAccount(w.url, user, provider, P.shown, 2);
      return adm('POST', acctPath(P.shown, '/pause'), { seconds: 600, reason: 'maintenance' });
    },
    400: () => adm('POST', acctPath(P.shown, '/pause'), { seconds: 0 }),
    401: () => noAuth('POST', acctPath(P.shown, '/pause')),
    403: () => disabled('POST', acctPath(P.shown, '/pause')),
    404: () => adm('POST', acctPath(P.never, '/pause')),
    413: () => adm('POST', acctPath(P.shown, '/pause'), big()),
  };
  SCENARIOS[`POST ${K('accounts/{account}/resume')}`] = {
    200: async () => {
      await putAccount(w.url, user, provider, P.shown, 2);
      return adm('POST', acctPath(P.shown, '/resume'));
    },
    400: () => adm('POST', U(`accounts/${BAD_ACCOUNT}/resume`)),
    401: () => noAuth('POST', acctPath(P.shown, '/resume')),
    403: () => disabled('POST', acctPath(P.shown, '/resume')),
    404: () => adm('POST', acctPath(P.never, '/resume')),
  };
  SCENARIOS[`GET ${K('jobs')}`] = {
    200: async () => {
      const { id } = await runningJob(provider);
      const p = await adm('POST', U(`jobs/${enc(id)}/progress`), { progress: 40 });
      assert.equal(p.status, 200, p.text);
      const r = await adm('GET', U('jobs'));
      assert.ok(r.json.some((j) => j.progress === 40 && j.lastProgress), r.text.slice(0, 300));
      return r;
    },
    400: () => adm('GET', U('jobs', 'bad%20user')),
    401: () => noAuth('GET', U('jobs')),
    403: () => disabled('GET', U('jobs')),
  };
  SCENARIOS[`POST ${K('jobs')}`] = {
    201: () =>
      adm('POST', U('jobs'), {
        ...P.body(),
        [P.key]: P.accts[0],
        replyUrl: 'https://example.com/hook',
        replyRef: 'ref',
        started: new Date(Date.now() - 225_000).toISOString(),
      }),
    400: () => adm('POST', U('jobs'), { ...P.body(), waitSeconds: 61 }),
    401: () => noAuth('POST', U('jobs'), P.body()),
    403: () => disabled('POST', U('jobs'), P.body()),
    404: () => adm('POST', U('jobs', 'nobody_has_accounts'), P.body()),
    409: async () => {
      const body = provider === 'dreamina' ? { ...P.body(), jobid: `dup-${nextId()}` } : P.body();
      await mustRegister(w.url, user, provider, body);
      return adm('POST', U('jobs'), body);
    },
    413: () => adm('POST', U('jobs'), big()),
    429: async () => {
      const { user: small } = await setupUser(w.url, { [provider]: { [P.accts[0]]: 1 } }, 'full');
      await mustRegister(w.url, small, provider, P.body());
      return adm('POST', U('jobs', small), P.body());
    },
  };
  SCENARIOS[`POST ${K('jobs/{id}/complete')}`] = {
    200: async () => {
      const { id } = await runningJob(provider);
      const r = await completeJob(w.url, user, provider, id, { status: 'completed', result: { url: 'https://v/1.mp4' } });
      assert.ok(r.json?.webhookId, r.text);
      return r;
    },
    400: () => adm('POST', U('jobs/5/complete'), { status: 'done' }),
    401: () => noAuth('POST', U('jobs/5/complete'), { status: 'failed' }),
    403: () => disabled('POST', U('jobs/5/complete'), { status: 'failed' }),
    404: () => completeJob(w.url, user, provider, provider === 'kling' ? 424242 : 'not-running', { status: 'failed' }),
    413: async () =>
      completeJob(w.url, user, provider, (await runningJob(provider)).id, { status: 'completed', result: 'x'.repeat(300 * 1024) }),
  };
  SCENARIOS[`POST ${K('jobs/{id}/progress')}`] = {
    200: async () => adm('POST', U(`jobs/${enc((await runningJob(provider)).id)}/progress`), { progress: 7 }),
    400: async () => adm('POST', U(`jobs/${enc((await runningJob(provider)).id)}/progress`), { progress: 101 }),
    401: () => noAuth('POST', U('jobs/5/progress')),
    403: () => disabled('POST', U('jobs/5/progress')),
    404: () => adm('POST', U(`jobs/${P.notRunning}/progress`)),
    413: () => adm('POST', U('jobs/5/progress'), big()),
  };
  SCENARIOS[`GET ${K('webhooks')}`] = {
    200: async () => {
      // Two deliveries to a closed port fail (one retry, 1 s later); a page of one of
      // them has a next link. One to the receiver is delivered (no payload).
      for (let i = 0; i < 2; i++) {
        const { id } = await runningJob(provider);
        const c = await completeJob(w.url, user, provider, id, { status: 'failed', result: [1, { a: null }] });
        assert.equal(c.status, 200, c.text);
      }
      const { id } = await runningJob(provider, { replyUrl: `${receiver.url}/${provider}` });
      await completeJob(w.url, user, provider, id, { status: 'completed' });
      const delivered = await webhooksUntil(provider, 'status=delivered', (rows) => rows.length > 0, 'a delivery');
      await checkResponse(`GET ${K('webhooks')}`, '200', delivered);
      await webhooksUntil(provider, 'status=failed', (rows) => rows.length >= 2, 'two failures');
      const r = await adm('GET', `${U('webhooks')}?status=failed&limit=1`);
      assert.match(r.headers.get('link') || '', /rel="next"/, 'a page that is not the last has a Link header');
      const next = /^<([^>]+)>/.exec(r.headers.get('link'))[1];
      const page2 = await adm('GET', next);
      assert.equal(page2.status, 200, page2.text);
      assert.notEqual(page2.json[0]?.webhookId, r.json[0].webhookId, 'the next page goes on');
      return r;
    },
    400: () => adm('GET', `${U('webhooks')}?status=lost`),
    401: () => noAuth('GET', U('webhooks')),
    403: () => disabled('GET', U('webhooks')),
  };
  SCENARIOS[`POST ${K('webhooks/retry')}`] = {
    200: () => adm('POST', U('webhooks/retry'), { since: '2020-01-01T00:00:00Z' }),
    400: () => adm('POST', U('webhooks/retry'), { since: 'yesterday' }),
    401: () => noAuth('POST', U('webhooks/retry'), { since: '2020-01-01T00:00:00Z' }),
    403: () => disabled('POST', U('webhooks/retry'), { since: '2020-01-01T00:00:00Z' }),
    413: () => adm('POST', U('webhooks/retry'), big()),
  };
  SCENARIOS[`POST ${K('webhooks/{webhookId}/retry')}`] = {
    202: async () => {
      const { id } = await runningJob(provider);
      const { webhookId } = (await completeJob(w.url, user, provider, id, { status: 'completed' })).json;
      await webhooksUntil(provider, 'status=failed&limit=1000', (rows) => rows.some((x) => x.webhookId === webhookId), 'the failure');
      return adm('POST', U(`webhooks/${webhookId}/retry`));
    },
    400: () => adm('POST', U('webhooks/msg_1/retry', 'bad%20user')),
    401: () => noAuth('POST', U('webhooks/msg_1/retry')),
    403: () => disabled('POST', U('webhooks/msg_1/retry')),
    404: () => adm('POST', U(`webhooks/msg_${'0'.repeat(32)}/retry`)),
    409: async () => {
      // Delivered (the receiver answered 200): only failed deliveries are retried.
      const { id } = await runningJob(provider, { replyUrl: `${receiver.url}/${provider}/409` });
      const { webhookId } = (await completeJob(w.url, user, provider, id, { status: 'completed' })).json;
      await webhooksUntil(provider, 'status=delivered&limit=1000', (rows) => rows.some((x) => x.webhookId === webhookId), 'the delivery');
      return adm('POST', U(`webhooks/${webhookId}/retry`));
    },
  };
}

/** The i-th valid account name of a provider (for the MAX_ACCOUNTS user). */
function account(provider, i) {
  if (provider === 'minimax') return `m${i}`;
  if (provider === 'dreamina') return `US:m${i}@x.com`;
  return `m${i}@x.com`;
}

/** Whether an operation (`METHOD /path`) asks a Durable Object (so may answer 503). */
function callsObject(key) {
  const [method, p] = key.split(' ');
  return method !== 'OPTIONS' && (/^\/v[12]\/\w+\/scheduler/.test(p) || p.startsWith('/admin/v1/users/'));
}

// The 429s come last: the throttle is per address, but keep its minute away from the rest.
const ORDER = (status) => (status === '429' ? 1 : 0);

/** Checks one answer against the documented response of (key, status). */
async function checkResponse(key, status, r) {
  const [method, docPath] = key.split(' ');
  const op = doc.paths[docPath]?.[method.toLowerCase()];
  assert.ok(op, `${key} is not in the document`);
  let response = op.responses[status];
  assert.ok(response, `${key}: status ${status} is produced by the worker but not documented`);
  if (response.$ref) response = resolveRef(doc, response.$ref);
  assert.equal(String(r.status), status, `${key}: expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);

  const media = response.content && Object.keys(response.content)[0];
  if (media === 'application/json') {
    assert.match(r.headers.get('content-type') || '', /^application\/json/, `${key} ${status} content-type`);
    assert.ok(r.json !== undefined, `${key} ${status}: body is not JSON: ${r.text.slice(0, 200)}`);
    const errors = validate(doc, response.content[media].schema, r.json);
    assert.deepEqual(errors, [], `${key} ${status} body ${r.text.slice(0, 400)}`);
  } else if (media) {
    assert.equal((r.headers.get('content-type') || '').split(';')[0], media, `${key} ${status} content-type`);
    assert.deepEqual(validate(doc, response.content[media].schema, r.text), []);
    assert.ok(r.text.length > 0, `${key} ${status}: empty body`);
  } else {
    assert.equal(r.text, '', `${key} ${status}: no body documented, got ${r.text.slice(0, 200)}`);
  }
  for (const [name, h] of Object.entries(response.headers || {})) {
    const header = h.$ref ? resolveRef(doc, h.$ref) : h;
    const value = r.headers.get(name);
    if (header.required) assert.ok(value !== null, `${key} ${status}: header ${name} missing`);
    if (value !== null) assert.deepEqual(validate(doc, header.schema, value), [], `${key} ${status} header ${name}`);
  }
  // Every public answer (errors included) carries ACAO, and the document says so; a
  // WebSocket handshake is not subject to CORS.
  if ((/^\/v[12]\//.test(docPath) || docPath === '/openapi.json') && status !== '101') {
    assert.equal(r.headers.get('access-control-allow-origin'), '*', `${key} ${status} ACAO`);
    assert.ok(response.headers?.['Access-Control-Allow-Origin'], `${key} ${status}: ACAO header not documented`);
  } else {
    assert.equal(r.headers.get('access-control-allow-origin'), null, `${key} ${status}: no CORS here`);
  }
}

// ---------------------------------------------------------------------------------------

before(async () => {
  // Each is kept as soon as it is up, so after() stops it even when another failed.
  const started = await Promise.allSettled([
    startWorker({ vars: { MAX_ACCOUNTS: String(MAX_ACCOUNTS), WEBHOOK_RETRY_SCHEDULE: '1' } }).then((x) => (w = x)),
    startWorker({ adminToken: null }).then((x) => (off = x)),
    startReceiver().then((x) => (receiver = x)),
  ]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  const accounts = {};
  for (const [provider, P] of Object.entries(PROVIDERS)) {
    accounts[provider] = Object.fromEntries(P.accts.map((a) => [a, P.limit]));
  }
  ({ user, token } = await setupUser(w.url, accounts));
  const r = await call('GET', '/openapi.json');
  assert.equal(r.status, 200);
  served = r.json;
  doc = process.env.OPENAPI_DOC_JSON ? JSON.parse(fs.readFileSync(process.env.OPENAPI_DOC_JSON, 'utf8')) : served;
});
after(async () => {
  await Promise.all([w?.stop(), off?.stop(), receiver?.close()]);
});

describe('(c) GET /openapi.json is openapi.yaml', () => {
  test('served as JSON with CORS', async () => {
    const r = await call('GET', '/openapi.json');
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
  });

  test('same version, paths, methods, statuses, operationIds and components', () => {
    const y = yamlFacts(YAML_TEXT);
    assert.equal(served.openapi, y.openapi);
    assert.match(served.openapi, /^3\.1\.\d+$/);
    assert.equal(served.info.version, y.version);
    const jsonOps = new Map();
    for (const [p, item] of Object.entries(served.paths)) {
      for (const [m, op] of Object.entries(item)) {
        if (METHODS.includes(m)) jsonOps.set(`${m.toUpperCase()} ${p}`, Object.keys(op.responses).sort());
      }
    }
    assert.deepEqual(
      [...jsonOps.entries()].sort(),
      [...y.ops.entries()].map(([k, v]) => [k, [...v].sort()]).sort(),
      'operations and their statuses (rebuild: bash scripts/build.sh)',
    );
    const ids = [];
    for (const item of Object.values(served.paths)) for (const m of METHODS) if (item[m]) ids.push(item[m].operationId);
    assert.deepEqual([...ids].sort(), [...y.operationIds].sort(), 'operationIds');
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    assert.deepEqual(Object.keys(served.components.schemas).sort(), [...y.schemas].sort(), 'component schemas');
    assert.deepEqual(Object.keys(served.components.responses).sort(), [...y.responses].sort(), 'component responses');
  });

  test('same constraints: every $ref, pattern, bound, type and required list', () => {
    const y = yamlLeaves(YAML_TEXT);
    const j = jsonLeaves(served);
    assert.ok(y.length > 1000, `${y.length} leaves read from the YAML`);
    const onlyYaml = y.filter((x, i) => x !== j[i]);
    assert.deepEqual(j, y, `served JSON differs from openapi.yaml (rebuild: bash scripts/build.sh); first: ${onlyYaml[0]}`);
  });

  test('security schemes: user and admin bearer tokens; every operation names its scheme', () => {
    const schemes = served.components.securitySchemes;
    assert.deepEqual(schemes.userToken, { ...schemes.userToken, type: 'http', scheme: 'bearer' });
    assert.deepEqual(schemes.adminToken, { ...schemes.adminToken, type: 'http', scheme: 'bearer' });
    assert.deepEqual(served.security, [{ adminToken: [] }], 'the operator token is the default');
    for (const [p, item] of Object.entries(served.paths)) {
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        const none = m === 'options' || p === '/' || p === '/openapi.json' || p.endsWith('/live');
        const expected = none ? [] : p.startsWith('/admin/') ? [{ adminToken: [] }] : [{ userToken: [] }];
        assert.deepEqual(op.security ?? served.security, expected, `${m} ${p} security`);
      }
    }
  });
});

describe('(b) every documented response is produced and matches its schema', () => {
  const produced = new Set();
  const entries = [];
  for (const [key, byStatus] of Object.entries(SCENARIOS)) {
    for (const status of Object.keys(byStatus)) entries.push([key, status]);
  }
  entries.sort((a, b) => ORDER(a[1]) - ORDER(b[1]));

  test('every documented operation has a scenario here, and every scenario is documented', () => {
    const docOps = [];
    for (const [p, item] of Object.entries(doc.paths)) for (const m of METHODS) if (item[m]) docOps.push(`${m.toUpperCase()} ${p}`);
    assert.deepEqual(Object.keys(SCENARIOS).sort(), docOps.sort());
    assert.ok(docOps.length >= 100, `${docOps.length} operations`);
  });

  for (const [key, status] of entries) {
    test(`${key} -> ${status}`, async () => {
      const r = await SCENARIOS[key][status]();
      await checkResponse(key, status, r);
      produced.add(`${key} ${status}`);
    });
  }

  // Documented statuses nobody can cause from outside: listed as skipped, with the
  // reason; and documented exactly where the reason applies.
  for (const key of Object.keys(SCENARIOS)) {
    if (callsObject(key)) test(`${key} -> 503`, { skip: UNPRODUCIBLE[503] }, () => {});
  }
  test('the 503s are on exactly the operations that call a Durable Object', () => {
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) {
        if (!item[m]) continue;
        const key = `${m.toUpperCase()} ${p}`;
        assert.equal('503' in item[m].responses, callsObject(key), `${key}: 503 documented iff it calls an object`);
      }
    }
  });

  test('no documented response went unproduced', (t) => {
    const documented = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) {
        if (!item[m]) continue;
        for (const s of Object.keys(item[m].responses)) documented.push([`${m.toUpperCase()} ${p}`, s]);
      }
    }
    const skipped = documented.filter(([, s]) => s in UNPRODUCIBLE);
    const missing = documented.filter(([k, s]) => !(s in UNPRODUCIBLE) && !produced.has(`${k} ${s}`)).map((x) => x.join(' '));
    assert.deepEqual(missing, [], 'documented but never produced (or its scenario failed)');
    assert.ok(produced.size >= 400, `${produced.size} (path, method, status) triples checked`);
    t.diagnostic(`${produced.size} produced; ${skipped.length} not producible from outside (${Object.entries(UNPRODUCIBLE).map(([s, why]) => `${s}: ${why}`).join('; ')})`);
  });
});

describe('prose rules of the document', () => {
  test('unknown paths are 404 JSON in the path style; known paths with another method 405 + Allow', async () => {
    const noRoute = resolveRef(doc, '#/components/responses/NoRoute');
    const notAllowed = resolveRef(doc, '#/components/responses/MethodNotAllowed');
    const shape = (response, r) => assert.deepEqual(validate(doc, response.content['application/json'].schema, r.json), [], r.text);
    let r = await call('GET', '/nope', { token: ADMIN_TOKEN });
    assert.deepEqual([r.status, r.json], [404, { error: 'Not found', code: 404 }]);
    shape(noRoute, r);
    r = await call('GET', '/v1/dreamina/nope', { token });
    assert.deepEqual([r.status, r.json], [404, { error: 'Not found' }]);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    shape(noRoute, r);
    r = await call('GET', '/admin/v1/users/u/runway/accounts', { token: ADMIN_TOKEN });
    assert.deepEqual([r.status, r.json], [404, { error: 'Unknown provider', code: 404 }]);
    for (const [provider, P] of Object.entries(PROVIDERS)) {
      r = await call('POST', P.base, { token });
      assert.equal(r.status, 405, `${provider}`);
      assert.deepEqual(r.json, provider === 'dreamina' ? { error: 'Method not allowed' } : { error: 'Method not allowed', code: 405 });
      assert.equal(r.headers.get('allow'), 'GET, OPTIONS');
      shape(notAllowed, r);
      r = await call('PUT', `${P.base}/x`, { token });
      assert.deepEqual([r.status, r.headers.get('allow')], [405, 'DELETE, OPTIONS']);
      r = await call('DELETE', `/admin/v1/users/${user}/${provider}/jobs`, { token: ADMIN_TOKEN });
      assert.deepEqual([r.status, r.headers.get('allow')], [405, 'GET, POST']);
      shape(notAllowed, r);
    }
    r = await call('OPTIONS', '/openapi.json');
    assert.deepEqual([r.status, r.headers.get('allow')], [405, 'GET']);
  });

  test('a trailing slash is forgiven; DELETE .../available cancels a job named "available"', async () => {
    const r = await call('GET', '/v1/kling/scheduler/', { token });
    assert.equal(r.status, 200);
    assert.deepEqual(validate(doc, { type: 'array', items: { $ref: '#/components/schemas/KlingJob' } }, r.json), []);
    const d = await call('DELETE', '/v1/dreamina/scheduler/available', { token });
    assert.deepEqual([d.status, d.json], [404, { error: 'Unable to locate running jobid available' }]);
    const m = await call('DELETE', '/v1/minimax/scheduler/live', { token });
    assert.deepEqual([m.status, m.json], [404, { error: 'Unable to locate running live', code: 404 }]);
    const k = await call('DELETE', '/v1/kling/scheduler/available', { token });
    assert.equal(k.status, 400);
  });
});
