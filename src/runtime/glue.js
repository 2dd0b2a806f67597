// JavaScript helpers of the Rust worker (src/runtime/js.rs declares them).
//
// Each one replaces a series of JS <-> wasm crossings on a hot path with one call:
// calling Durable Objects over RPC, building a response from a directory's answer
// without copying its body into wasm, reading a request body within a size limit, and
// sending one webhook attempt. They hold no scheduling logic.

// ---- Durable Objects

function stub(namespace, name) {
  return namespace.get(namespace.idFromName(name));
}

// `method(arg)` on the object named `name`.
export function callNamed(namespace, name, method, arg) {
  return stub(namespace, name)[method](arg);
}

// `method(arg)` on every named object at once; a failed call answers null.
export function callEach(namespace, names, method, arg) {
  return Promise.all(
    names.map((name) => stub(namespace, name)[method](arg).then((v) => v, () => null)),
  );
}

// `method(arg)` on every object of `ids` at once; a failed call answers null.
export function callEachById(namespace, ids, method, arg) {
  return Promise.all(
    ids.map((id) => namespace.get(namespace.idFromString(id))[method](arg).then((v) => v, () => null)),
  );
}

// Forwards a request (a WebSocket upgrade) to a new object with a unique id.
export function fetchUnique(namespace, request) {
  return namespace.get(namespace.newUniqueId()).fetch(request);
}

// ---- Workers KV and the rate limiter

export function kvGet(namespace, key) {
  return namespace.get(key);
}

export function kvPut(namespace, key, value) {
  return namespace.put(key, value);
}

export function kvDelete(namespace, key) {
  return namespace.delete(key);
}

// Whether `key` is still under its limit.
export async function withinLimit(limiter, key) {
  return (await limiter.limit({ key })).success;
}

// One failed authentication of a public request, counted against the client address
// (Workers Rate Limiting): "unknown" while under the limit, "throttled" past it.
async function throttle(request, limiter) {
  if (!limiter) return "unknown";
  const client = request.headers.get("cf-connecting-ip") || "unknown";
  try {
    return (await limiter.limit({ key: client })).success ? "unknown" : "throttled";
  } catch {
    return "unknown"; // a limiter that fails must not lock users out
  }
}

// The user a token's KV key belongs to: the user id, or "unknown"/"throttled" for a
// token KV does not know (the failure counted as `throttle` says). One call and one
// await for the whole step, on the path of every 401.
export async function userOfKey(request, tokens, limiter, key) {
  const record = await tokens.get(key);
  const user = record === null ? undefined : userOfRecord(record);
  return user === undefined ? throttle(request, limiter) : "=" + user;
}

// The authentication of a public read whose token this isolate has not verified yet:
// the KV read and, for a token KV does not know (or no token: key ""), the throttling
// count. A refused request is answered here with the bodies wasm gave (the provider's
// error shape), so the path of every 401 never waits in wasm; a known token's request
// goes on in wasm: `resume(request, env, user, key)`. Written flat (no helper awaits):
// this is the path of every guess, and each async layer costs a few microtasks.
const REFUSAL_HEADERS = { "content-type": "application/json", "access-control-allow-origin": "*" };
export async function authenticate(request, env, tokens, limiter, key, refused, throttled, resume) {
  const record = key ? await tokens.get(key) : null;
  const user = record === null ? undefined : userOfRecord(record);
  if (user !== undefined) return resume(request, env, user, key);
  let over = false;
  if (limiter) {
    try {
      over = !(await limiter.limit({ key: request.headers.get("cf-connecting-ip") || "unknown" })).success;
    } catch {
      // a limiter that fails must not lock users out
    }
  }
  return new Response(over ? throttled : refused, { status: over ? 429 : 401, headers: REFUSAL_HEADERS });
}

// The user id of a token's KV record; undefined for a record that is not ours.
function userOfRecord(record) {
  try {
    const user = JSON.parse(record).user;
    return typeof user === "string" ? user : undefined;
  } catch {
    return undefined;
  }
}

// A failed authentication without a KV read (no usable Authorization header).
export function refuse(request, limiter) {
  return throttle(request, limiter);
}

// A response in one call: status, body (null for none) and the headers as one string,
// names and values on alternate lines (values never hold a line break).
export function makeResponse(status, body, headerLines) {
  const headers = new Headers();
  if (headerLines) {
    const lines = headerLines.split("\n");
    for (let i = 0; i + 1 < lines.length; i += 2) headers.set(lines[i], lines[i + 1]);
  }
  return new Response(body, { status, headers });
}

// ---- Answers (see protocol::Answer): "SSS body" or "SSSL<link>\n<body>"

export function answerStatus(answer) {
  return Number(answer.slice(0, 3)) | 0;
}

export function answerBody(answer) {
  return answer[3] === "L" ? answer.slice(answer.indexOf("\n") + 1) : answer.slice(4);
}

// The HTTP response of a directory's answer; the body never enters wasm.
export function respond(answer, cors) {
  const status = answerStatus(answer);
  const headers = new Headers();
  if (cors) headers.set("access-control-allow-origin", "*");
  if (answer[3] === "L") headers.set("link", answer.slice(4, answer.indexOf("\n")));
  // A 503 made by a directory (an account object did not answer) asks for a retry in a
  // second, like the worker's own 503.
  if (status === 503) headers.set("retry-after", "1");
  if (status === 204) return new Response(null, { status, headers });
  headers.set("content-type", "application/json");
  return new Response(answerBody(answer), { status, headers });
}

// ---- Request bodies

// Past the limit, this much more is read and dropped so that a client still sending
// gets its 413 instead of a reset connection; past it, the body is cancelled.
const DRAIN_BYTES = 8 * 1024 * 1024;

// The body as UTF-8 text, read chunk by chunk: null once it passes `limit` bytes.
// Nothing past the limit is kept, so a huge or endless body costs at most the limit
// in memory. Throws a TypeError on invalid UTF-8.
export async function readText(request, limit) {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await drain(reader, DRAIN_BYTES);
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

async function drain(reader, budget) {
  let dropped = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    dropped += value.byteLength;
    if (dropped > budget) {
      reader.cancel().catch(() => {});
      return;
    }
  }
}

// Finishes with a request body nothing read. The runtime holds the response until the
// client's body is consumed, so an answer that needs no body (a 401, a 404, a cancel)
// would otherwise wait for the whole upload, or forever for a stalled one. What
// arrives within a moment and a megabyte is read and dropped (a connection whose body
// was cut short cannot be reused); past that the body is cancelled.
export async function settleBody(request) {
  if (!request.body || request.bodyUsed) return;
  const reader = request.body.getReader();
  let timer;
  const stalled = new Promise((resolve) => (timer = setTimeout(resolve, 100, null)));
  let read = 0;
  try {
    for (;;) {
      const chunk = await Promise.race([reader.read(), stalled]);
      if (chunk === null || chunk.done) break;
      read += chunk.value.byteLength;
      if (read > 1024 * 1024) break;
    }
  } catch {
    // the client went away: nothing to finish
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

// ---- URLs

// Checks a webhook URL with the runtime's own parser, the one fetch() uses: "" when
// fetch can send to it, else what is wrong.
export function urlProblem(text) {
  let url;
  try {
    url = new URL(text);
    new Request(url, { method: "POST" });
  } catch {
    return "is not a valid URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must use http or https";
  if (url.username || url.password) return "must not carry user info";
  return "";
}

// ---- Webhooks

// One signed POST. Its time limit starts here, when it is sent (the caller never has
// more attempts in flight than the runtime sends at once). Answers [status, retryAfter]
// or [0, reason] when no answer came.
export async function post(url, body, headers, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(url, {
      method: "POST",
      body,
      headers,
      redirect: "manual",
      signal: controller.signal,
    });
    response.body?.cancel().catch(() => {});
    return [response.status, response.headers.get("retry-after")];
  } catch (e) {
    if (controller.signal.aborted) return [0, `no answer within ${timeoutMs / 1000} s`];
    return [0, `network error: ${(e && e.message) || e}`];
  } finally {
    clearTimeout(timer);
  }
}
