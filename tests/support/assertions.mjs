// Assertions shared by the test files: the exact shapes of list items and error bodies,
// exact key sets, the CORS header, and the regexes and formatting of `started` and
// `elapsed`.

import assert from 'node:assert/strict';

export const STARTED_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
export const ELAPSED_RE = /^\d{2,}:\d{2}$/;

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `elapsed` for whole seconds: minutes zero-padded to two digits, colon, seconds. */
export function fmtElapsed(sec) {
  return `${String(Math.floor(sec / 60)).padStart(2, '0')}:${String(sec % 60).padStart(2, '0')}`;
}

/** A 201/4xx body check: exactly these keys, in any order. */
export function assertKeys(obj, keys, what = '') {
  assert.ok(obj && typeof obj === 'object', `${what} expected an object, got ${JSON.stringify(obj)}`);
  assert.deepEqual(Object.keys(obj).sort(), [...keys].sort(), `${what} keys of ${JSON.stringify(obj)}`);
}

/** Asserts a Kling public item's exact key set and types. */
export function assertKlingItem(item, { withAccount = false } = {}) {
  const allowed = ['id', 'email', 'started', 'elapsed', 'replyUrl', 'replyRef'];
  if (withAccount) allowed.push('account');
  for (const k of Object.keys(item)) assert.ok(allowed.includes(k), `unexpected key ${k} in ${JSON.stringify(item)}`);
  for (const k of ['id', 'email', 'started', 'elapsed']) assert.ok(k in item, `missing ${k}`);
  if (withAccount) assert.ok('account' in item, 'missing account');
  assert.equal(typeof item.id, 'number');
  assert.ok(Number.isInteger(item.id) && item.id > 0);
  assert.equal(typeof item.email, 'string');
  assert.match(item.started, STARTED_RE);
  assert.match(item.elapsed, ELAPSED_RE);
  for (const k of ['replyUrl', 'replyRef']) {
    if (k in item) assert.equal(typeof item[k], 'string', `${k} must be a string when present (never null)`);
  }
}

/** Asserts a Dreamina public item's exact key set and types. */
export function assertDreaminaItem(item, { withAccount = false } = {}) {
  const allowed = ['jobid', 'submitId', 'model', 'elapsedSeconds', 'replyUrl'];
  if (withAccount) allowed.push('account');
  for (const k of Object.keys(item)) assert.ok(allowed.includes(k), `unexpected key ${k} in ${JSON.stringify(item)}`);
  for (const k of ['jobid', 'submitId', 'model', 'elapsedSeconds']) assert.ok(k in item, `missing ${k}`);
  if (withAccount) assert.ok('account' in item, 'missing account');
  assert.equal(typeof item.jobid, 'string');
  assert.equal(typeof item.submitId, 'string');
  assert.equal(typeof item.model, 'string');
  assert.ok(Number.isInteger(item.elapsedSeconds) && item.elapsedSeconds >= 0, 'elapsedSeconds whole, >= 0');
  if ('replyUrl' in item) assert.equal(typeof item.replyUrl, 'string', 'replyUrl never null');
}

/** Asserts the exact ACAO header that every public response carries. */
export function assertCors(r) {
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
}

/** An operator/Kling error body: {"error": string, "code": status} (message optional). */
export function assertCodeError(r, status, message) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assertKeys(r.json, ['error', 'code'], `${status} body`);
  assert.equal(r.json.code, status);
  assert.equal(typeof r.json.error, 'string');
  assert.ok(r.json.error.length > 0);
  if (message !== undefined) assert.equal(r.json.error, message);
}

/** A Dreamina error body: exactly {"error": string}. */
export function assertPlainError(r, status, message) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assertKeys(r.json, ['error'], `${status} body`);
  assert.equal(typeof r.json.error, 'string');
  if (message !== undefined) assert.equal(r.json.error, message);
}
