// Fixtures: the state a test starts from, made through the operator API. Users (a
// unique id per test, a token, configured accounts), registered and completed jobs, and
// `started` timestamps in the past.

import assert from 'node:assert/strict';
import { admin } from './client.mjs';

/** A unique user id for one test, so tests sharing a worker do not see each other. */
let userSeq = 0;
export function newUser(prefix = 'u') {
  userSeq += 1;
  return `${prefix}${process.pid}_${userSeq}_${Math.floor(Math.random() * 1e6)}`;
}

/**
 * A source of made-up client addresses under `prefix` (e.g. '198.18'), a new one per
 * call. Failed authentications are throttled per client address (30 a minute), and
 * wrangler dev passes `cf-connecting-ip` on as sent: a test that sends bad tokens does
 * so from addresses of its own, so it never trips another test's throttle.
 */
export function clientAddresses(prefix) {
  let seq = 0;
  return () => {
    seq += 1;
    return `${prefix}.${(seq >> 8) & 255}.${seq & 255}`;
  };
}

/** Issues a token for `user`; asserts the 201 and its shape; returns the raw token. */
export async function issueToken(url, user) {
  const r = await admin(url, 'POST', '/admin/v1/tokens', { user });
  assert.equal(r.status, 201, `issue token for ${user}: ${r.text}`);
  assert.deepEqual(Object.keys(r.json).sort(), ['token', 'user']);
  assert.equal(r.json.user, user);
  assert.match(r.json.token, /^[A-Za-z0-9_-]+$/);
  return r.json.token;
}

export function accountPath(user, provider, account) {
  return `/admin/v1/users/${user}/${provider}/accounts/${encodeURIComponent(account)}`;
}

/** Configures `account` for `user` with `maxJobs`; asserts the 200. */
export async function putAccount(url, user, provider, account, maxJobs) {
  const r = await admin(url, 'PUT', accountPath(user, provider, account), { maxJobs });
  assert.equal(r.status, 200, `put account ${provider}/${account}: ${r.text}`);
  assert.deepEqual(r.json, { account, maxJobs });
  return r.json;
}

/**
 * A fresh user with a token and the given accounts, e.g.
 *   await setupUser(url, { kling: { 'a@x.com': 5 }, dreamina: { 'US:a@x.com': 2 } })
 * Returns { user, token }.
 */
export async function setupUser(url, accounts = {}, prefix = 'u') {
  const user = newUser(prefix);
  const token = await issueToken(url, user);
  for (const [provider, accts] of Object.entries(accounts)) {
    for (const [account, maxJobs] of Object.entries(accts)) {
      await putAccount(url, user, provider, account, maxJobs);
    }
  }
  return { user, token };
}

/** Registers a job; returns the raw response (status not asserted). */
export function registerJob(url, user, provider, body) {
  return admin(url, 'POST', `/admin/v1/users/${user}/${provider}/jobs`, body);
}

/** Registers a job and asserts 201; returns the created job. */
export async function mustRegister(url, user, provider, body) {
  const r = await registerJob(url, user, provider, body);
  assert.equal(r.status, 201, `register ${provider} job ${JSON.stringify(body)}: ${r.text}`);
  return r.json;
}

/** Completes a job (id: Kling task id or raw Dreamina jobid, encoded here). */
export function completeJob(url, user, provider, id, body = { status: 'completed' }) {
  return admin(
    url,
    'POST',
    `/admin/v1/users/${user}/${provider}/jobs/${encodeURIComponent(String(id))}/complete`,
    body,
  );
}

/** ISO-8601 with milliseconds for `secondsAgo` seconds before now (negative: future). */
export function isoAgo(secondsAgo, now = Date.now()) {
  return new Date(now - secondsAgo * 1000).toISOString();
}
