// RFC 6455 frames, both directions, for the tests' own WebSocket peers (the e2e live
// client, the browser tests' fake live server, the OpenAPI live scenario). Node 20 has
// no WebSocket client and `ws` is only a transitive dependency here, so the few lines
// of framing live in one place instead.

import { randomBytes } from 'node:crypto';

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };

/**
 * One final frame. `masked`: a client's frames must be masked (a random key per frame),
 * a server's must not be.
 */
export function encodeFrame(opcode, payload, { masked }) {
  const body = Buffer.from(payload);
  const len = body.length;
  const maskBit = masked ? 0x80 : 0;
  let head;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, maskBit | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = maskBit | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!masked) return Buffer.concat([head, body]);
  const mask = randomBytes(4);
  for (let i = 0; i < len; i++) body[i] ^= mask[i % 4];
  return Buffer.concat([head, mask, body]);
}

/**
 * The first whole frame at the start of `buf`, unmasked: { fin, opcode, data, rest }
 * (`rest`: the bytes after it); null while `buf` holds only part of one.
 */
export function decodeFrame(buf) {
  if (buf.length < 2) return null;
  const fin = (buf[0] & 0x80) !== 0;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const maskAt = off;
  if (masked) off += 4;
  if (buf.length < off + len) return null;
  const data = Buffer.from(buf.subarray(off, off + len));
  if (masked) for (let i = 0; i < len; i++) data[i] ^= buf[maskAt + (i % 4)];
  return { fin, opcode, data, rest: buf.subarray(off + len) };
}
