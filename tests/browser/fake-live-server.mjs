// A stand-in for the worker's live view, for testing src/page/index.html in a browser
// without building the worker. It serves the page at GET / and speaks the live protocol
// of shared API.md ("Live view") on /v1|v2/{provider}/scheduler/live:
//   client -> {"token": "..."}   (first message)
//   server -> {"type": "available", "body": <body>}   at once, then on every push
// A token in `badTokens` (default: "bad") is answered with a close frame, code 4401.
//
// The WebSocket server side is written here on node:http's 'upgrade' event and
// node:crypto (RFC 6455: handshake, masked client frames, unmasked server text / close /
// pong frames), so the tests need no npm package besides playwright-core.
//
// Use from a test:
//   const srv = await startFakeLiveServer({ bodies: demoBodies() });
//   srv.url; srv.push('kling', body); srv.tokens; await srv.close();
// Or by hand: `node tests/browser/fake-live-server.mjs [port]` serves the demo data, and
// `curl -X POST localhost:PORT/_push/kling -d '<body json>'` pushes a body to the page.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeFrame, encodeFrame } from '../support/websocket-frames.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PAGE = path.join(ROOT, 'src', 'page', 'index.html');
export const PROVIDERS = ['kling', 'dreamina', 'minimax', 'pixverse', 'runwayml'];
const LIVE = /^\/v[12]\/(kling|dreamina|minimax|pixverse|runwayml)\/scheduler\/live$/;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Bodies of every provider with no account (what a new user sees). */
export function emptyBodies() {
  return {
    kling: { executing: [], available: [] },
    dreamina: { executing: {}, total: 0, available: [] },
    minimax: { executing: [], available: [] },
    pixverse: { executing: [], available: [] },
    runwayml: { executing: [], available: [] },
  };
}

/** Realistic bodies: a few accounts and jobs per provider, one paused account. */
export function demoBodies() {
  const started = (s) => new Date(Date.now() - s * 1000).toISOString();
  const el = (s) => `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  const t = (s) => ({ started: started(s), elapsed: el(s) });
  return {
    kling: {
      executing: [
        { id: 781245, email: 'studio@acme.io', ...t(3725), replyUrl: 'https://hooks.acme.io/kling', replyRef: 'trailer-cut-3' },
        { id: 781302, email: 'studio@acme.io', ...t(412) },
        { id: 781311, email: 'render2@acme.io', ...t(95) },
      ],
      available: [
        { email: 'render2@acme.io', maxJobs: 3, executing: 1, available: 2 },
        { email: 'studio@acme.io', maxJobs: 5, executing: 2, available: 3 },
      ],
    },
    dreamina: {
      executing: {
        'JP:mika@acme.io': [
          { jobid: 'j0418123456102v-u12345-JP:mika@acme.io:dreamina', submitId: 'a1f9', model: 'seedance-1.0-pro', elapsedSeconds: 305 },
        ],
        'US:lee@acme.io': [
          { jobid: 'j0418122901377v-u12345-US:lee@acme.io:dreamina', submitId: 'c771', model: 'seedance-1.0-lite', elapsedSeconds: 812, replyUrl: 'https://hooks.acme.io/d' },
          { jobid: 'j0418123301518v-u12345-US:lee@acme.io:dreamina', submitId: 'c802', model: 'seedream-3.0', elapsedSeconds: 47 },
        ],
      },
      total: 3,
      available: [
        { account: 'JP:mika@acme.io', maxJobs: 2, executing: 1, available: 1 },
        { account: 'US:lee@acme.io', maxJobs: 4, executing: 2, available: 2 },
      ],
    },
    minimax: {
      executing: [
        { videoId: '318042219454821', ...t(1260) },
        { imageId: 'img-55e1c0', ...t(18) },
        { videoId: '318042270001123', ...t(243), replyRef: 'promo-b' },
      ],
      available: [
        { account: 'acme-main', maxJobs: 3, executing: 2, available: 1 },
        { account: 'acme-spare', maxJobs: 2, executing: 0, available: 0 },
      ],
    },
    pixverse: {
      executing: [
        { id: '3859201', type: 'video', ...t(534) },
        { id: '3859247', type: 'music', ...t(61) },
      ],
      available: [{ email: 'pix@acme.io', maxJobs: 4, executing: 2, available: 2 }],
    },
    runwayml: {
      executing: [{ taskId: '5b1f7c0e-2d1a-4c8e-9f4e-1a2b3c4d5e6f', replyRef: 'hero-shot' }],
      available: [
        { email: 'runway@acme.io', maxJobs: 2, executing: 1, available: 1 },
        { email: 'runway-b@acme.io', maxJobs: 1, executing: 0, available: 1 },
      ],
    },
  };
}

// ---------------------------------------------------------------------------------------
// RFC 6455 frames (server side)

/** A server frame (unmasked, as RFC 6455 requires of servers). */
const frame = (opcode, payload) => encodeFrame(opcode, payload, { masked: false });

/** One accepted socket: parses client frames, calls onText(string) per text message. */
class Peer {
  constructor(socket, provider, onText, onGone) {
    this.socket = socket;
    this.provider = provider;
    this.buf = Buffer.alloc(0);
    this.parts = [];
    this.open = true;
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse(onText);
    });
    let done = false;
    const gone = () => {
      this.open = false;
      if (!done) {
        done = true;
        onGone(this);
      }
    };
    socket.on('close', gone);
    socket.on('error', gone);
  }

  parse(onText) {
    for (;;) {
      const f = decodeFrame(this.buf);
      if (!f) return;
      const { fin, opcode, data } = f;
      this.buf = f.rest;
      if (opcode === 0x8) return this.close(1000);
      if (opcode === 0x9) this.write(frame(0xa, data));
      if (opcode === 0x1 || opcode === 0x0) {
        this.parts.push(data);
        if (fin) {
          const text = Buffer.concat(this.parts).toString('utf8');
          this.parts = [];
          onText(this, text);
        }
      }
    }
  }

  write(buf) {
    if (this.open && !this.socket.destroyed) this.socket.write(buf);
  }

  send(obj) {
    this.write(frame(0x1, Buffer.from(JSON.stringify(obj))));
  }

  /** Sends a close frame with `code` and ends the TCP connection. */
  close(code, reason = '') {
    if (!this.open) return;
    const r = Buffer.from(reason);
    const payload = Buffer.alloc(2 + r.length);
    payload.writeUInt16BE(code, 0);
    r.copy(payload, 2);
    this.write(frame(0x8, payload));
    this.socket.end();
    this.open = false;
  }
}

// ---------------------------------------------------------------------------------------

/**
 * Starts the fake server on 127.0.0.1 (port 0 = any free port).
 * Options: bodies (per provider; defaults to emptyBodies()), badTokens (["bad"]),
 * rejectUpgrades (answer every upgrade with 503, to watch the page's backoff).
 * Returns { url, port, push(provider, body), tokens, upgrades, peers(provider?),
 *           setRejectUpgrades(bool), close() }.
 */
export async function startFakeLiveServer({ port = 0, bodies = emptyBodies(), badTokens = ['bad'], rejectUpgrades = false } = {}) {
  const current = { ...emptyBodies(), ...bodies };
  const peers = new Set();
  const state = {
    tokens: [], // every first message's token, in order, as { provider, token, raw }
    upgrades: [], // every upgrade attempt, as { provider, at: Date.now() }
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(fs.readFileSync(PAGE));
    }
    const m = /^\/_push\/(\w+)$/.exec(url.pathname);
    if (req.method === 'POST' && m && PROVIDERS.includes(m[1])) {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => {
        try {
          push(m[1], JSON.parse(raw));
          res.writeHead(204).end();
        } catch (e) {
          res.writeHead(400).end(String(e));
        }
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
  });

  server.on('upgrade', (req, socket) => {
    const url = new URL(req.url, 'http://x');
    const m = LIVE.exec(url.pathname);
    const key = req.headers['sec-websocket-key'];
    state.upgrades.push({ provider: m && m[1], at: Date.now() });
    if (!m || !key || String(req.headers.upgrade).toLowerCase() !== 'websocket' || rejectUpgrades) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    socket.setNoDelay(true);
    const peer = new Peer(
      socket,
      m[1],
      (p, text) => {
        if (p.authed) return; // later messages mean nothing in this protocol
        let token;
        try {
          token = JSON.parse(text).token;
        } catch {
          /* not JSON: refused below */
        }
        state.tokens.push({ provider: p.provider, token, raw: text });
        if (typeof token !== 'string' || !token || badTokens.includes(token)) return p.close(4401, 'Unauthorized');
        p.authed = true;
        p.send({ type: 'available', body: current[p.provider] });
      },
      (p) => peers.delete(p),
    );
    peers.add(peer);
  });

  function push(provider, body) {
    if (!PROVIDERS.includes(provider)) throw new Error(`unknown provider ${provider}`);
    current[provider] = body;
    for (const p of peers) if (p.authed && p.provider === provider) p.send({ type: 'available', body });
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = server.address().port;

  return {
    port: actual,
    url: `http://127.0.0.1:${actual}/`,
    push,
    tokens: state.tokens,
    upgrades: state.upgrades,
    bodies: current,
    /** Open sockets that sent a good token (of one provider, or all). */
    peers: (provider) => [...peers].filter((p) => p.authed && (!provider || p.provider === provider)),
    setRejectUpgrades(v) {
      rejectUpgrades = v;
    },
    /** Stops listening and drops every socket abruptly (as a crashed server would). */
    async close() {
      for (const p of peers) p.socket.destroy();
      peers.clear();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

// By hand: node tests/browser/fake-live-server.mjs [port]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const srv = await startFakeLiveServer({ port: Number(process.argv[2] || 8788), bodies: demoBodies() });
  console.log(`fake live server on ${srv.url} (any token but "bad" is accepted)`);
}
