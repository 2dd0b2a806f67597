// A small WebSocket client for the live view (shared API.md "Live view"), for e2e tests.
// Node 20 has no global WebSocket, and `ws` is only a transitive dependency here (of
// miniflare, through wrangler): relying on where npm happens to hoist it is fragile, so
// this is a minimal RFC 6455 client on node:http's upgrade and node:crypto instead
// (handshake, masked client text/close/pong frames, unmasked server frames, fragments).
//
//   const c = await connectLive(url, 'kling', token);   // socket open, token sent,
//   c.messages                                           // first message received
//   const n = c.mark(); /* change something */ await c.message(n, { timeout: 3000 });
//   const { code } = await c.waitClose();                // the server's close code
//   c.close();
//
// Every received message is kept in `messages` as { t, text, json } (t: performance.now()
// at arrival), so tests can count and time them.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { decodeFrame, encodeFrame } from './websocket-frames.mjs';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The public base path of each provider (PixVerse is under /v2). */
export const PUBLIC_BASE = {
  kling: '/v1/kling/scheduler',
  dreamina: '/v1/dreamina/scheduler',
  minimax: '/v1/minimax/scheduler',
  pixverse: '/v2/pixverse/scheduler',
  runwayml: '/v1/runwayml/scheduler',
};

/** The live view path of `provider`. */
export function livePath(provider) {
  return `${PUBLIC_BASE[provider]}/live`;
}

/** A client frame (masked, as RFC 6455 requires of clients). */
const frame = (opcode, payload) => encodeFrame(opcode, payload, { masked: true });

/** One client socket. Use openLive / connectLive to make one. */
export class LiveClient {
  constructor(socket, head, label) {
    this.socket = socket;
    this.label = label;
    this.buf = Buffer.alloc(0);
    this.parts = [];
    /** Every text message received: { t, text, json }. */
    this.messages = [];
    /** { code, reason, t, clean } once the connection is gone (code 1006: no close frame). */
    this.closed = null;
    this.waiters = new Set();
    this.sentClose = false;
    socket.setNoDelay(true);
    socket.on('data', (d) => this.onData(d));
    socket.on('error', () => {});
    socket.on('close', () => this.onGone(1006, '', false));
    if (head?.length) this.onData(head);
  }

  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const f = decodeFrame(this.buf);
      if (!f) return;
      const { fin, opcode, data } = f;
      this.buf = f.rest;
      if (opcode === 0x8) {
        const code = data.length >= 2 ? data.readUInt16BE(0) : 1005;
        const reason = data.length > 2 ? data.subarray(2).toString('utf8') : '';
        if (!this.sentClose) {
          this.sentClose = true;
          try {
            this.socket.write(frame(0x8, data.subarray(0, 2)));
          } catch {
            /* gone */
          }
        }
        this.onGone(code, reason, true);
        this.socket.end();
        return;
      }
      if (opcode === 0x9) {
        try {
          this.socket.write(frame(0xa, data));
        } catch {
          /* gone */
        }
        continue;
      }
      if (opcode === 0xa) continue;
      if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        this.parts.push(data);
        if (fin) {
          const text = Buffer.concat(this.parts).toString('utf8');
          this.parts = [];
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          this.messages.push({ t: performance.now(), text, json });
          this.wake();
        }
      }
    }
  }

  onGone(code, reason, clean) {
    if (!this.closed) this.closed = { code, reason, clean, t: performance.now() };
    this.wake();
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  /** Sends a text message. */
  send(text) {
    this.socket.write(frame(0x1, Buffer.from(text, 'utf8')));
  }

  /** Sends a binary message. */
  sendBinary(buf) {
    this.socket.write(frame(0x2, Buffer.from(buf)));
  }

  /** Polls (on every event) until check() returns a value other than undefined. */
  until(check, { timeout = 5000, message = 'condition' } = {}) {
    return new Promise((resolve, reject) => {
      let timer;
      const tick = () => {
        let v;
        try {
          v = check();
        } catch (e) {
          done();
          return reject(e);
        }
        if (v !== undefined) {
          done();
          resolve(v);
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(tick);
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: timed out after ${timeout} ms waiting for ${message} (${this.messages.length} messages, closed: ${JSON.stringify(this.closed)})`));
      }, timeout);
      this.waiters.add(tick);
      tick();
    });
  }

  /** Resolves the message with index `i` (0: the first ever received). */
  message(i, opts = {}) {
    return this.until(() => this.messages[i], { message: `message #${i}`, ...opts });
  }

  /** How many messages have arrived so far: take it before a change, then message(mark). */
  mark() {
    return this.messages.length;
  }

  /** Resolves { code, reason, t, clean } when the connection is gone. */
  waitClose(opts = {}) {
    return this.until(() => this.closed ?? undefined, { message: 'close', ...opts });
  }

  /** Closes from our side (a close frame, then the TCP connection). */
  close(code = 1000) {
    if (!this.sentClose && !this.closed) {
      this.sentClose = true;
      const p = Buffer.alloc(2);
      p.writeUInt16BE(code, 0);
      try {
        this.socket.write(frame(0x8, p));
      } catch {
        /* gone */
      }
    }
    setTimeout(() => this.socket.destroy(), 200).unref();
  }

  /** Drops the TCP connection without a close frame. */
  destroy() {
    this.socket.destroy();
  }
}

/**
 * Opens a WebSocket to `url` (http://host:port of the worker) + `path`. Resolves a
 * LiveClient once the server answered 101; rejects with err.status / err.text when the
 * server answered anything else.
 */
export function openSocket(url, path, { headers = {}, label = path, timeout = 30_000 } = {}) {
  const { hostname, port } = new URL(url);
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const r = http.request({
      host: hostname,
      port,
      path,
      method: 'GET',
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': key,
        'sec-websocket-version': '13',
        ...headers,
      },
    });
    const timer = setTimeout(() => r.destroy(new Error(`upgrade of ${path} timed out`)), timeout);
    r.on('upgrade', (res, socket, head) => {
      clearTimeout(timer);
      const expected = createHash('sha1').update(key + GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== expected) {
        socket.destroy();
        return reject(new Error(`bad Sec-WebSocket-Accept from ${path}`));
      }
      resolve(new LiveClient(socket, head, label));
    });
    r.on('response', (res) => {
      clearTimeout(timer);
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const err = new Error(`${path}: no upgrade, HTTP ${res.statusCode}`);
        err.status = res.statusCode;
        err.headers = res.headers;
        err.text = Buffer.concat(chunks).toString('utf8');
        reject(err);
      });
    });
    r.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    r.end();
  });
}

/** Opens the live socket of `provider` (nothing sent yet). */
export function openLive(url, provider, opts = {}) {
  return openSocket(url, livePath(provider), { label: `${provider} live`, ...opts });
}

/**
 * Opens the live socket of `provider`, sends {"token"} and waits for the first message.
 * Returns the client; its first message is client.messages[0].
 */
export async function connectLive(url, provider, token, { timeout = 10_000, label } = {}) {
  const c = await openLive(url, provider, label ? { label } : {});
  c.helloAt = performance.now();
  c.send(JSON.stringify({ token }));
  await c.message(0, { timeout });
  return c;
}
