"""schemathesis hooks for scripts/fuzz.sh (loaded via SCHEMATHESIS_HOOKS=fuzz_hooks).

The worker throttles failed authentications per client address (`cf-connecting-ip`,
429 after 30 in a minute). The fuzzer sends many requests without or with wrong
credentials on purpose (negative cases, the ignored_auth probes), so each request gets
its own address: the answer under test is then the per-request one (401), not the
throttle. The throttle itself is covered by tests/e2e/openapi.test.mjs.
"""

import itertools

import schemathesis

_counter = itertools.count(1)


@schemathesis.hook
def before_call(context, case, **kwargs):
    n = next(_counter)
    if case.headers is None:
        case.headers = {}
    case.headers["cf-connecting-ip"] = "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)
