// The webhook side: a programmable HTTP receiver that records every delivery and answers
// per a script, and the check of a delivery's Standard Webhooks signature.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { sleep } from './server.mjs';

/**
 * A real HTTP server on 127.0.0.1 (free port) that records every request and answers
 * per a script. `handler` is one of:
 *   - undefined: always 200
 *   - an array of statuses, used in order, the last one repeated ([500, 500, 200])
 *   - an array of steps { status, body?, headers?, delayMs? } (same order rule)
 *   - a function (record, index) => step | status (may be async)
 *
 * Each record: { method, url, headers (lower-case names), body (raw string), time (ms
 * since epoch), index }. Returns { url, port, requests, waitFor(n, timeoutMs), close() }.
 */
export async function startReceiver(handler) {
  const requests = [];
  const waiters = [];
  const sockets = new Set();
  const stepFor = async (rec, i) => {
    let step;
    if (handler === undefined) step = 200;
    else if (typeof handler === 'function') step = await handler(rec, i);
    else step = handler[Math.min(i, handler.length - 1)];
    if (typeof step === 'number') step = { status: step };
    return step ?? { status: 200 };
  };
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (c) => chunks.push(c));
    request.on('end', async () => {
      const rec = {
        method: request.method,
        url: request.url,
        headers: { ...request.headers },
        body: Buffer.concat(chunks).toString('utf8'),
        time: Date.now(),
        index: requests.length,
      };
      requests.push(rec);
      for (const w of [...waiters]) w();
      try {
        const step = await stepFor(rec, rec.index);
        if (step.delayMs) await sleep(step.delayMs);
        if (response.destroyed) return;
        response.writeHead(step.status, { 'content-type': 'application/json', ...(step.headers || {}) });
        response.end(step.body ?? '{}');
      } catch (err) {
        response.writeHead(599);
        response.end(String(err));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    /** Resolves with the records once at least n requests arrived; rejects on timeout. */
    waitFor(n, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const done = () => {
          if (requests.length >= n) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(done), 1);
            resolve(requests.slice());
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(done), 1);
          reject(new Error(`receiver got ${requests.length} of ${n} requests within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(done);
        done();
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * Verifies a received request against a `whsec_<base64>` secret per Standard Webhooks:
 * `webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256(secret bytes,
 * "{webhook-id}.{webhook-timestamp}.{body}")>` entries; one must match. Returns true/false.
 */
export function verifyWebhookSignature(secret, record) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const id = record.headers['webhook-id'];
  const ts = record.headers['webhook-timestamp'];
  const sigHeader = record.headers['webhook-signature'];
  if (!id || !ts || !sigHeader) return false;
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${record.body}`).digest();
  return sigHeader.split(' ').some((part) => {
    const [version, sig] = part.split(',');
    if (version !== 'v1' || !sig) return false;
    const got = Buffer.from(sig, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}
