// Starts the worker for scripts/fuzz.sh: wrangler dev through the e2e support (fresh
// --persist-to temp dir, ADMIN_TOKEN set), then issues an API token and configures
// accounts for the user the OpenAPI examples name ('12345': Kling a@x.com, b@x.com,
// Dreamina US:a@x.com, US:b@x.com), so the authenticated and success paths are reachable.
//
// Prints one JSON line {"url","userToken","adminToken","user","logFile"} to stdout once
// ready, then keeps the worker up until it receives SIGTERM/SIGINT (or its parent exits),
// and stops it.
//
//   node tests/fuzz/fuzz-worker.mjs   (the wasm build must exist: scripts/build.sh)

import { issueToken, putAccount } from '../support/fixtures.mjs';
import { ADMIN_TOKEN, startWorker } from '../support/server.mjs';

const USER = '12345';

const w = await startWorker();
let stopping = false;
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  await w.stop();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
// If the parent (scripts/fuzz.sh) dies without signalling, do not outlive it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) shutdown(0);
}, 1000);

try {
  const userToken = await issueToken(w.url, USER);
  await putAccount(w.url, USER, 'kling', 'a@x.com', 50);
  await putAccount(w.url, USER, 'kling', 'b@x.com', 50);
  await putAccount(w.url, USER, 'dreamina', 'US:a@x.com', 50);
  await putAccount(w.url, USER, 'dreamina', 'US:b@x.com', 50);
  process.stdout.write(
    `${JSON.stringify({ url: w.url, userToken, adminToken: ADMIN_TOKEN, user: USER, logFile: w.logFile })}\n`,
  );
} catch (err) {
  console.error(`fuzz-worker: setup failed: ${err?.stack || err}`);
  await shutdown(1);
}
