// A client stand-in that can hang up, for the tests of "a waiter whose client goes away
// is never admitted".
//
// On Cloudflare, when a client disconnects, the runtime cancels its request: the
// worker's pending awaits never resume, and request.signal aborts. Run locally, that
// never happens: workerd's HTTP server only notices a closed connection when it writes
// the response, and wrangler dev's proxy does not pass a disconnect on. Cancelling a
// request inside workerd does the same as the edge, though: this worker forwards every
// request to the scheduler over a service binding, and a request carrying
// `x-test-hang-up-after-ms: N` is cancelled after N ms, exactly as a client that left.
// It then answers 499 {"hungUp": true} to the test, which stands for "no answer".
//
// Test-only: it is never deployed; tests/support/server.mjs runs it in front of the
// scheduler (wrangler dev with two configs) when a test asks for `hangUps: true`.

const HEADER = 'x-test-hang-up-after-ms';

export default {
  async fetch(request, env) {
    const after = Number(request.headers.get(HEADER));
    if (!request.headers.has(HEADER) || !Number.isFinite(after) || after < 0) {
      return env.SCHEDULER.fetch(request);
    }
    const headers = new Headers(request.headers);
    headers.delete(HEADER);
    const forwarded = new Request(request, { headers, signal: AbortSignal.timeout(after) });
    try {
      return await env.SCHEDULER.fetch(forwarded);
    } catch (err) {
      if (err?.name !== 'TimeoutError' && err?.name !== 'AbortError') throw err;
      return Response.json({ hungUp: true, afterMs: after }, { status: 499 });
    }
  },
};
