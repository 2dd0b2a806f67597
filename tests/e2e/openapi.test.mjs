// Keeps openapi.yaml honest against the running worker:
//   (a) every route of src/routes.rs (its `Route` doc comments) is in the document, and
//       every documented operation is a route;
//   (b) every documented (path, method, status) is driven here and its body and headers
//       validated against the documented schema (a small JSON-schema validator for the
//       subset the document uses); a documented response nobody produced fails;
//   (c) GET /openapi.json is the YAML: paths, methods, statuses, operationIds and
//       component names read from the YAML text equal the served JSON's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { req } from '../support/client.mjs';
import {
  completeJob,
  issueToken,
  mustRegister,
  putAccount,
  setupUser,
} from '../support/fixtures.mjs';
import { ADMIN_TOKEN, ROOT, startWorker } from '../support/server.mjs';

const YAML_TEXT = fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8');
const ROUTES_RS = fs.readFileSync(path.join(ROOT, 'src', 'routes.rs'), 'utf8');
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

/** Returns a list of error strings (empty when `value` is valid). */
export function validate(doc, schema, value, at = '$') {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [`${at}: no value allowed`];
  for (const k of Object.keys(schema)) {
    if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`validator: unsupported keyword ${k} at ${at}`);
  }
  if (schema.$ref) return validate(doc, resolveRef(doc, schema.$ref), value, at);
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
  const doc = { components: { schemas: { N: { type: 'integer', minimum: 1, maximum: 3 } } } };
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
// (a) routes.rs <-> document

/** `METHOD /path/{}` keys, path parameter names erased. */
const norm = (method, p) => `${method.toUpperCase()} ${p.replace(/\{[^}]+\}/g, '{}')}`;

function routeKeysFromSource() {
  const enumBody = ROUTES_RS.slice(ROUTES_RS.indexOf('pub enum Route {'), ROUTES_RS.indexOf('\n}\n', ROUTES_RS.indexOf('pub enum Route {')));
  const docLines = [...enumBody.matchAll(/^\s*\/\/\/ `([^`]+)`(.*)$/gm)];
  const variants = [...enumBody.matchAll(/^    ([A-Z][A-Za-z]+)\b/gm)].map((m) => m[1]);
  assert.equal(docLines.length, variants.length, `every Route variant has one \`METHOD /path\` doc comment: ${variants}`);
  const keys = new Set();
  const publicPaths = new Set();
  let preflight = false;
  for (const [, code, rest] of docLines) {
    if (code === 'OPTIONS' && /any public path/.test(rest)) {
      preflight = true;
      continue;
    }
    const m = /^([A-Z]+) (\/\S*)$/.exec(code);
    assert.ok(m, `unexpected Route doc comment: ${code}`);
    const [, method, p] = m;
    const expanded = p.includes('{provider}') ? ['kling', 'dreamina'].map((pr) => p.replace('{provider}', pr)) : [p];
    for (const e of expanded) {
      keys.add(norm(method, e));
      if (e.startsWith('/v1/')) publicPaths.add(e.replace(/\{[^}]+\}/g, '{}'));
    }
  }
  assert.ok(preflight, 'routes.rs documents the OPTIONS preflight');
  for (const p of publicPaths) keys.add(`OPTIONS ${p}`);
  return keys;
}

function operationKeys(doc) {
  const keys = new Set();
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) if (METHODS.includes(m)) keys.add(norm(m, p));
  }
  return keys;
}

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
      if (op && /^ {6}responses:$/.test(line)) inResponses = true;
      else if (op && /^ {6}\S/.test(line)) inResponses = false;
      if (op && inResponses && (m = /^ {8}'(\d{3})':$/.exec(line))) facts.ops.get(op).push(m[1]);
    }
    if ((m = /^\s+operationId: (\S+)$/.exec(line))) facts.operationIds.push(m[1]);
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

let w; // ADMIN_TOKEN set
let off; // no ADMIN_TOKEN: operator routes answer 403
let doc; // GET /openapi.json
let user;
let token;
let ipSeq = 0;

/** A request from a fresh client address, so the failed-auth throttle stays out of the way. */
function call(method, p, { token: t, body, headers = {}, worker = w } = {}) {
  ipSeq += 1;
  return req(worker.url, method, p, {
    token: t,
    body,
    headers: { 'cf-connecting-ip': `198.51.${(ipSeq >> 8) & 255}.${ipSeq & 255}`, ...headers },
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

const enc = encodeURIComponent;
let seq = 1000;
const nextId = () => ++seq * 1000 + Math.floor(Math.random() * 1000);
const usersPath = (u, provider, rest) => `/admin/v1/users/${u}/${provider}/${rest}`;

/** One registered, executing job per call (with a replyUrl, so completing it queues a webhook). */
async function runningJob(provider, { u = user } = {}) {
  if (provider === 'kling') {
    const id = nextId();
    await mustRegister(w.url, u, 'kling', { id, replyUrl: 'http://127.0.0.1:9/hook', replyRef: 'ref-1' });
    return String(id);
  }
  const job = await mustRegister(w.url, u, 'dreamina', { submitId: 's-1', model: 'seedance-2.0', replyUrl: 'http://127.0.0.1:9/hook', replyRef: 'r' });
  return job.jobid;
}

// ---------------------------------------------------------------------------------------
// (b) one scenario per documented (path, method, status). Path keys are the document's.

const PUBLIC = {
  kling: { acct: 'a@x.com', item: '{task_id}', bad: 'abc' },
  dreamina: { acct: 'US:a@x.com', item: '{jobid}' },
};

const SCENARIOS = {
  'GET /openapi.json': { 200: () => call('GET', '/openapi.json') },
};

for (const provider of ['kling', 'dreamina']) {
  const base = `/v1/${provider}/scheduler`;
  const { item } = PUBLIC[provider];
  const itemPath = `${base}/${item}`;
  const sample = provider === 'kling' ? '123' : 'some-job';
  SCENARIOS[`OPTIONS ${base}`] = { 204: () => call('OPTIONS', base) };
  SCENARIOS[`OPTIONS ${base}/available`] = { 204: () => call('OPTIONS', `${base}/available`) };
  SCENARIOS[`OPTIONS ${itemPath}`] = {
    204: () => call('OPTIONS', `${base}/${sample}`),
    400: () => call('OPTIONS', `${base}/%zz`),
  };
  SCENARIOS[`GET ${base}`] = {
    200: async () => {
      await runningJob(provider);
      return call('GET', base, { token });
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
  SCENARIOS[`DELETE ${itemPath}`] = {
    204: async () => call('DELETE', `${base}/${enc(await runningJob(provider))}`, { token }),
    ...(provider === 'kling'
      ? { 400: () => call('DELETE', `${base}/abc`, { token }) }
      : { 400: () => call('DELETE', `${base}/%zz`, { token }) }),
    401: () => call('DELETE', `${base}/${sample}`, { headers: { authorization: 'Basic abc' } }),
    404: () => call('DELETE', `${base}/${provider === 'kling' ? '987654321' : enc('not:running@x')}`, { token }),
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

for (const provider of ['kling', 'dreamina']) {
  const { acct } = PUBLIC[provider];
  const other = provider === 'kling' ? 'other@x.com' : 'EU:other@x.com';
  const P = (rest) => `/admin/v1/users/{user}/${provider}/${rest}`;
  const registration = () => (provider === 'kling' ? { id: nextId() } : { submitId: 's', model: 'm' });

  SCENARIOS[`GET ${P('accounts')}`] = {
    200: () => adm('GET', usersPath(user, provider, 'accounts')),
    400: () => adm('GET', usersPath('bad%20user', provider, 'accounts')),
    401: () => call('GET', usersPath(user, provider, 'accounts'), { token: 'wrong' }),
    403: () => call('GET', usersPath(user, provider, 'accounts'), { token: ADMIN_TOKEN, worker: off }),
  };
  SCENARIOS[`PUT ${P('accounts/{account}')}`] = {
    200: () => adm('PUT', usersPath(user, provider, `accounts/${enc(other)}`), { maxJobs: 3 }),
    400: () => adm('PUT', usersPath(user, provider, `accounts/${enc(other)}`), { maxJobs: 0 }),
    401: () => call('PUT', usersPath(user, provider, `accounts/${enc(other)}`), { body: { maxJobs: 3 } }),
    403: () => call('PUT', usersPath(user, provider, `accounts/${enc(other)}`), { token: ADMIN_TOKEN, body: { maxJobs: 3 }, worker: off }),
    413: () => adm('PUT', usersPath(user, provider, `accounts/${enc(other)}`), big()),
  };
  SCENARIOS[`DELETE ${P('accounts/{account}')}`] = {
    204: async () => {
      const gone = provider === 'kling' ? 'gone@x.com' : 'US:gone@x.com';
      await putAccount(w.url, user, provider, gone, 2);
      return adm('DELETE', usersPath(user, provider, `accounts/${enc(gone)}`));
    },
    400: () => adm('DELETE', usersPath(user, provider, 'accounts/not-an-account')),
    401: () => call('DELETE', usersPath(user, provider, `accounts/${enc(acct)}`), { token: 'wrong' }),
    403: () => call('DELETE', usersPath(user, provider, `accounts/${enc(acct)}`), { token: ADMIN_TOKEN, worker: off }),
    404: () => adm('DELETE', usersPath(user, provider, `accounts/${enc(provider === 'kling' ? 'never@x.com' : 'US:never@x.com')}`)),
  };
  SCENARIOS[`POST ${P('jobs')}`] = {
    201: () =>
      adm(
        'POST',
        usersPath(user, provider, 'jobs'),
        provider === 'kling'
          ? { id: nextId(), email: acct, replyUrl: 'https://example.com/hook', replyRef: 'ref', started: new Date(Date.now() - 225_000).toISOString() }
          : { submitId: 'a1b2', model: 'seedance-2.0', account: acct, replyUrl: 'https://example.com/hook', replyRef: 'ref' },
      ),
    400: () => adm('POST', usersPath(user, provider, 'jobs'), provider === 'kling' ? { id: 'x' } : { model: 'm' }),
    401: () => call('POST', usersPath(user, provider, 'jobs'), { token: 'wrong', body: registration() }),
    403: () => call('POST', usersPath(user, provider, 'jobs'), { token: ADMIN_TOKEN, body: registration(), worker: off }),
    404: () => adm('POST', usersPath('nobody_has_accounts', provider, 'jobs'), registration()),
    409: async () => {
      const body = provider === 'kling' ? { id: nextId() } : { submitId: 's', model: 'm', jobid: `dup-${nextId()}` };
      await mustRegister(w.url, user, provider, body);
      return adm('POST', usersPath(user, provider, 'jobs'), body);
    },
    413: () => adm('POST', usersPath(user, provider, 'jobs'), big()),
    429: async () => {
      const { user: small } = await setupUser(w.url, { [provider]: { [acct]: 1 } }, 'full');
      await mustRegister(w.url, small, provider, registration());
      return adm('POST', usersPath(small, provider, 'jobs'), registration());
    },
  };
  SCENARIOS[`POST ${P('jobs/{id}/complete')}`] = {
    200: async () => completeJob(w.url, user, provider, await runningJob(provider), { status: 'completed', result: { url: 'https://v/1.mp4' } }),
    400: () => adm('POST', usersPath(user, provider, `jobs/${provider === 'kling' ? '5' : 'j5'}/complete`), { status: 'done' }),
    401: () => call('POST', usersPath(user, provider, 'jobs/5/complete'), { body: { status: 'failed' } }),
    403: () => call('POST', usersPath(user, provider, 'jobs/5/complete'), { token: ADMIN_TOKEN, body: { status: 'failed' }, worker: off }),
    404: () => completeJob(w.url, user, provider, provider === 'kling' ? 424242 : 'not-running', { status: 'failed' }),
    413: async () =>
      completeJob(w.url, user, provider, await runningJob(provider), { status: 'completed', result: 'x'.repeat(300 * 1024) }),
  };
  SCENARIOS[`GET ${P('webhooks')}`] = {
    200: async () => {
      await completeJob(w.url, user, provider, await runningJob(provider), { status: 'failed', result: [1, { a: null }] });
      const r = await adm('GET', usersPath(user, provider, 'webhooks'));
      assert.ok(Array.isArray(r.json) && r.json.length > 0, `expected undelivered webhooks: ${r.text}`);
      return r;
    },
    400: () => adm('GET', `${usersPath(user, provider, 'webhooks')}?status=delivered`),
    401: () => call('GET', usersPath(user, provider, 'webhooks'), { token: 'wrong' }),
    403: () => call('GET', usersPath(user, provider, 'webhooks'), { token: ADMIN_TOKEN, worker: off }),
  };
}

// The 429s come last: the throttle is per address, but keep its minute away from the rest.
const ORDER = (status) => (status === '429' ? 1 : 0);

// ---------------------------------------------------------------------------------------

before(async () => {
  [w, off] = await Promise.all([startWorker(), startWorker({ adminToken: null })]);
  ({ user, token } = await setupUser(w.url, {
    kling: { 'a@x.com': 50 },
    dreamina: { 'US:a@x.com': 50 },
  }));
  const r = await call('GET', '/openapi.json');
  assert.equal(r.status, 200);
  doc = r.json;
});
after(async () => {
  await Promise.all([w?.stop(), off?.stop()]);
});

describe('(c) GET /openapi.json is openapi.yaml', () => {
  test('served as JSON with CORS', async () => {
    const r = await call('GET', '/openapi.json');
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
  });

  test('same version, paths, methods, statuses, operationIds and components', () => {
    const y = yamlFacts(YAML_TEXT);
    assert.equal(doc.openapi, y.openapi);
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(doc.info.version, y.version);
    const jsonOps = new Map();
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(item)) {
        if (METHODS.includes(m)) jsonOps.set(`${m.toUpperCase()} ${p}`, Object.keys(op.responses).sort());
      }
    }
    assert.deepEqual(
      [...jsonOps.entries()].sort(),
      [...y.ops.entries()].map(([k, v]) => [k, [...v].sort()]).sort(),
      'operations and their statuses',
    );
    const ids = [];
    for (const item of Object.values(doc.paths)) for (const m of METHODS) if (item[m]) ids.push(item[m].operationId);
    assert.deepEqual([...ids].sort(), [...y.operationIds].sort(), 'operationIds');
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    assert.deepEqual(Object.keys(doc.components.schemas).sort(), [...y.schemas].sort(), 'component schemas');
    assert.deepEqual(Object.keys(doc.components.responses).sort(), [...y.responses].sort(), 'component responses');
  });

  test('same constraints: every $ref, pattern, bound, type and required list', () => {
    const y = yamlLeaves(YAML_TEXT);
    const j = jsonLeaves(doc);
    assert.ok(y.length > 300, `${y.length} leaves read from the YAML`);
    const onlyYaml = y.filter((x, i) => x !== j[i]);
    assert.deepEqual(j, y, `served JSON differs from openapi.yaml (rebuild: bash scripts/build.sh); first: ${onlyYaml[0]}`);
  });

  test('security schemes: user and admin bearer tokens; every operation names its scheme', () => {
    assert.deepEqual(doc.components.securitySchemes.userToken, { ...doc.components.securitySchemes.userToken, type: 'http', scheme: 'bearer' });
    assert.deepEqual(doc.components.securitySchemes.adminToken, { ...doc.components.securitySchemes.adminToken, type: 'http', scheme: 'bearer' });
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        const expected = m === 'options' || p === '/openapi.json' ? [] : p.startsWith('/admin/') ? [{ adminToken: [] }] : [{ userToken: [] }];
        assert.deepEqual(op.security, expected, `${m} ${p} security`);
      }
    }
  });
});

describe('(a) src/routes.rs and the document name the same operations', () => {
  test('every Route is documented and every documented operation is a Route', () => {
    const fromSource = routeKeysFromSource();
    const fromDoc = operationKeys(doc);
    const missing = [...fromSource].filter((k) => !fromDoc.has(k));
    const extra = [...fromDoc].filter((k) => !fromSource.has(k));
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
    assert.ok(fromDoc.size >= 27, `${fromDoc.size} operations`);
  });

  test('every documented operation has a scenario here, and every scenario is documented', () => {
    const docOps = [...operationKeys(doc)].sort();
    const scenarioOps = Object.keys(SCENARIOS).map((k) => norm(...k.split(' '))).sort();
    assert.deepEqual(scenarioOps, docOps);
  });
});

describe('(b) every documented response is produced and matches its schema', () => {
  const produced = new Set();
  const entries = [];
  for (const [key, byStatus] of Object.entries(SCENARIOS)) {
    for (const status of Object.keys(byStatus)) entries.push([key, status]);
  }
  entries.sort((a, b) => ORDER(a[1]) - ORDER(b[1]));

  for (const [key, status] of entries) {
    test(`${key} -> ${status}`, async () => {
      const [method, docPath] = key.split(' ');
      const op = doc.paths[docPath]?.[method.toLowerCase()];
      assert.ok(op, `${key} is not in the document`);
      let response = op.responses[status];
      assert.ok(response, `${key}: status ${status} is produced by the worker but not documented`);
      if (response.$ref) response = resolveRef(doc, response.$ref);

      const r = await SCENARIOS[key][status]();
      assert.equal(String(r.status), status, `${key}: expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
      produced.add(`${key} ${status}`);

      const media = response.content?.['application/json'];
      if (media) {
        assert.match(r.headers.get('content-type') || '', /^application\/json/, `${key} ${status} content-type`);
        assert.ok(r.json !== undefined, `${key} ${status}: body is not JSON: ${r.text.slice(0, 200)}`);
        const errors = validate(doc, media.schema, r.json);
        assert.deepEqual(errors, [], `${key} ${status} body ${r.text.slice(0, 400)}`);
      } else {
        assert.equal(r.text, '', `${key} ${status}: no body documented, got ${r.text.slice(0, 200)}`);
      }
      for (const [name, h] of Object.entries(response.headers || {})) {
        const header = h.$ref ? resolveRef(doc, h.$ref) : h;
        const value = r.headers.get(name);
        if (header.required) assert.ok(value !== null, `${key} ${status}: header ${name} missing`);
        if (value !== null) assert.deepEqual(validate(doc, header.schema, value), [], `${key} ${status} header ${name}`);
      }
      // Every public answer (errors included) carries ACAO, and the document says so.
      if (docPath.startsWith('/v1/') || docPath === '/openapi.json') {
        assert.equal(r.headers.get('access-control-allow-origin'), '*', `${key} ${status} ACAO`);
        assert.ok(response.headers?.['Access-Control-Allow-Origin'], `${key} ${status}: ACAO header not documented`);
      } else {
        assert.equal(r.headers.get('access-control-allow-origin'), null, `${key} ${status}: operator routes send no CORS`);
      }
    });
  }

  test('no documented response went unproduced', () => {
    const documented = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) {
        if (!item[m]) continue;
        for (const s of Object.keys(item[m].responses)) documented.push(`${m.toUpperCase()} ${p} ${s}`);
      }
    }
    const missing = documented.filter((d) => !produced.has(d));
    assert.deepEqual(missing, [], 'documented but never produced (or its scenario failed)');
    assert.ok(produced.size >= 100, `${produced.size} (path, method, status) triples checked`);
  });
});

describe('prose rules of the document', () => {
  test('unknown paths are 404 JSON in the path style; known paths with another method 405 + Allow', async () => {
    let r = await call('GET', '/nope', { token: ADMIN_TOKEN });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { error: 'Not found', code: 404 });
    r = await call('GET', '/v1/dreamina/nope', { token });
    assert.deepEqual([r.status, r.json], [404, { error: 'Not found' }]);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    r = await call('GET', '/admin/v1/users/u/runway/accounts', { token: ADMIN_TOKEN });
    assert.deepEqual([r.status, r.json], [404, { error: 'Not found', code: 404 }]);
    r = await call('POST', '/v1/kling/scheduler', { token });
    assert.equal(r.status, 405);
    assert.deepEqual(r.json, { error: 'Method not allowed', code: 405 });
    assert.equal(r.headers.get('allow'), 'GET, OPTIONS');
    r = await call('PUT', '/v1/dreamina/scheduler/x', { token });
    assert.deepEqual([r.status, r.json], [405, { error: 'Method not allowed' }]);
    r = await call('OPTIONS', '/openapi.json');
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
  });

  test('a trailing slash is forgiven; DELETE .../available cancels a job named "available"', async () => {
    const r = await call('GET', '/v1/kling/scheduler/', { token });
    assert.equal(r.status, 200);
    assert.deepEqual(validate(doc, { type: 'array', items: { $ref: '#/components/schemas/KlingJob' } }, r.json), []);
    const d = await call('DELETE', '/v1/dreamina/scheduler/available', { token });
    assert.deepEqual([d.status, d.json], [404, { error: 'Unable to locate running jobid available' }]);
    const k = await call('DELETE', '/v1/kling/scheduler/available', { token });
    assert.equal(k.status, 400);
  });
});
