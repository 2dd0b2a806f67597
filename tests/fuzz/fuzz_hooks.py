"""schemathesis hooks for scripts/fuzz.sh (loaded via SCHEMATHESIS_HOOKS=fuzz_hooks).

before_call, on every request:
  * its own `cf-connecting-ip`: the worker throttles failed authentications per client
    address (429 after 30 a minute), and the fuzzer's deliberate no-auth probes would
    otherwise trip it and be judged as "auth not enforced" (the 429 is covered by
    tests/e2e/openapi.test.mjs);
  * a `replyUrl` of a registration gets the host 127.0.0.1:9 (a closed port; the rest of
    the URL stays as generated): the fuzz run never makes the worker POST webhooks to
    hosts on the internet;
  * a `waitSeconds` of 2..60 (`2.0` too) becomes 1: a registration may wait for a slot that long,
    and a run of 60 s waits would only measure the fuzzer's patience;
  * a registration of a job id the run already registered gets a fresh id 4 times in 5
    (the generator repeats small ids, and every repeat would only be the 409);
  * stateful phase, valid requests: a `{user}` that is neither 12345 nor a user the run
    issued a token for becomes 12345 4 times in 5 (the config's dictionaries, which point
    the other phases at the fixtures, were not seen to steer the steps that start a
    stateful chain, and a chain that starts on a user without accounts ends at its
    first 404).

after_call:
  * resends a request that wrangler dev's own proxy dropped: its plain-text 503 "Your
    worker restarted mid-request" is never the worker's answer (the request did not
    reach it; tests/support/client.mjs explains when it happens and resends likewise);
    the resent answer replaces it in place, before the checks, and is counted
    ($FUZZ_STATS line `#resent`);
  * counts every answer per operation and phase into $FUZZ_STATS (one line per call:
    operationId, phase, status, and a 4xx's error message), which scripts/fuzz.sh sums
    up;
  * puts the seeded fixtures (tests/fuzz/fuzz-worker.mjs, $FUZZ_FIXTURES) back when the
    fuzzer used one up, so the success paths stay reachable all run long: a pool job that
    was completed or cancelled is registered again under the same id, a churn account
    that was removed is configured again.
"""

import itertools
import json
import os
import random
import re
import threading
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import schemathesis

_counter = itertools.count(1)
_lock = threading.Lock()
_session = requests.Session()

_FIXTURES = {}
if os.environ.get("FUZZ_FIXTURES"):
    with open(os.environ["FUZZ_FIXTURES"]) as f:
        _info = json.load(f)
    _FIXTURES = _info["fixtures"]
    _URL = _info["url"]
    _ADMIN = {"authorization": f"Bearer {_info['adminToken']}"}
    _USER = _info["user"]
_STATS = os.environ.get("FUZZ_STATS")

# <provider><Op>: the operations whose fixtures get used up.
_OP = re.compile(r"^(kling|dreamina|minimax|pixverse|runwayml)(CompleteJob|Cancel|DeleteAccount)$")


def _operation_id(case):
    return case.operation.definition.raw.get("operationId", case.operation.label)


_issued_users = set()
_seen_ids = set()
_fresh = itertools.count(1)
_rng = random.Random(os.environ.get("FUZZ_SEED") or None)


def _phase(case):
    return getattr(case.meta.phase.name, "value", case.meta.phase.name) if case.meta is not None else "?"


@schemathesis.hook
def before_call(context, case, kwargs):
    n = next(_counter)
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    params = case.path_parameters
    if _phase(case) == "stateful" and not negative and _FIXTURES and params and "user" in params:
        if params["user"] not in _issued_users and _rng.random() < 0.8:
            params["user"] = _USER
    if case.headers is None:
        case.headers = {}
    case.headers["cf-connecting-ip"] = "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)
    body = case.body
    if isinstance(body, dict):
        url = body.get("replyUrl")
        if isinstance(url, str) and re.match(r"^[Hh][Tt][Tt][Pp][Ss]?://", url):
            parts = urlsplit(url)
            if parts.netloc:
                body["replyUrl"] = urlunsplit((parts.scheme, "127.0.0.1:9", parts.path, parts.query, parts.fragment))
        if _operation_id(case).endswith("RegisterJob") and not negative:
            _fresh_id(body)
        wait = body.get("waitSeconds")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and 2 <= wait <= 60:
            body["waitSeconds"] = 1


def _fresh_id(body):
    for key in ("id", "jobid", "videoId", "imageId", "taskId"):
        value = body.get(key)
        if value is None or isinstance(value, (dict, list, bool)):
            continue
        if value in _seen_ids and _rng.random() < 0.8:
            n = next(_fresh)
            body[key] = 7_000_000_000 + n if isinstance(value, int) else f"fuzz-{n}"
        _seen_ids.add(body[key])


DEV_PROXY_DROP = b"Your worker restarted mid-request."


def _is_dev_proxy_drop(response):
    content_type = ";".join(response.headers.get("content-type", []))
    return response.status_code == 503 and "json" not in content_type and response.content.startswith(DEV_PROXY_DROP)


def _resend(response):
    from schemathesis.core import NOT_SET
    from schemathesis.core.transport import Response

    again = Response.from_requests(_session.send(response.request, timeout=30), verify=True)
    for name in ("status_code", "headers", "content", "content_size", "elapsed", "message", "http_version", "encoding"):
        setattr(response, name, getattr(again, name))
    response._deserialized = NOT_SET
    response._encoded_body = None


@schemathesis.hook
def after_call(context, case, response):
    op = _operation_id(case)
    for _ in range(2):
        if not _is_dev_proxy_drop(response):
            break
        _resend(response)
        if _STATS:
            with _lock, open(_STATS, "a") as f:
                f.write(f"#resent\t{op}\t\t\n")
    if _STATS:
        phase = _phase(case)
        why = ""
        if 400 <= response.status_code < 500:
            try:
                why = str(response.json().get("error", ""))[:60]
            except Exception:
                why = "(not JSON)"
            why = re.sub(r"\s+", " ", why)
        with _lock, open(_STATS, "a") as f:
            f.write(f"{op}\t{phase}\t{response.status_code}\t{why}\n")
    if op == "issueToken" and response.status_code == 201:
        try:
            _issued_users.add(response.json()["user"])
        except Exception:
            pass
    m = _OP.match(op)
    if not m or not _FIXTURES or response.status_code >= 300:
        return
    provider, kind = m.groups()
    fixtures = _FIXTURES["providers"][provider]
    params = case.path_parameters or {}
    user = params.get("user", _USER)
    if kind == "DeleteAccount":
        account = params.get("account")
        if user == _USER and account in fixtures["churn"]:
            _session.put(
                f"{_URL}/admin/v1/users/{_USER}/{provider}/accounts/{quote(account, safe='')}",
                json={"maxJobs": fixtures["churnMaxJobs"]},
                headers=_ADMIN,
                timeout=30,
            )
        return
    job_id = next((str(v) for k, v in params.items() if k != "user"), None)
    if user == _USER and job_id in fixtures["bodies"]:
        body = fixtures["bodies"][job_id]
        url = f"{_URL}/admin/v1/users/{_USER}/{provider}/jobs"
        r = _session.post(url, json=body, headers=_ADMIN, timeout=30)
        if r.status_code in (404, 429):
            # Its account is full or gone: any other one will do.
            anywhere = {k: v for k, v in body.items() if k not in ("email", "account")}
            r = _session.post(url, json=anywhere, headers=_ADMIN, timeout=30)
        if r.status_code != 201 and _STATS:
            text = re.sub(r"\s+", " ", r.text[:80])
            with _lock, open(_STATS, "a") as f:
                f.write(f"#refill\t{op}\t{r.status_code}\t{text}\n")
