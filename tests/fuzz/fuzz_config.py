"""Writes the schemathesis config of scripts/fuzz.sh from the seeded fixtures.

    python tests/fuzz/fuzz_config.py <info.json> <schemathesis.toml> <stateful scenarios> <stateful steps>

info.json is the line tests/fuzz/fuzz-worker.mjs prints. The config binds path, query
and body parameters to the fixtures (schemathesis "dictionaries"): most generated
requests name user 12345, the accounts, jobs, failed deliveries, cursors and tokens that
exist, so cases get past the 404s into the success paths; the rest stay generated. The
tokens themselves reach the config through the environment (FUZZ_USER_TOKEN,
FUZZ_ADMIN_TOKEN), never argv; the revocable tokens are throwaway users' own.
"""

import json
import sys

PROVIDERS = ["kling", "dreamina", "minimax", "pixverse", "runwayml"]
ACCOUNT_KEY = {"kling": "email", "dreamina": "account", "minimax": "account", "pixverse": "email", "runwayml": "email"}
CANCEL_PARAM = {"kling": "task_id", "dreamina": "jobid"}
# How often a generated value is replaced by a fixture.
P = 0.8


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def binding(name, dictionary, probability=P):
    return f'"{name}" = {{ dictionary = "{dictionary}", probability = {probability} }}'


def main(info_path, out_path, scenarios, steps):
    info = json.load(open(info_path))
    fixtures = info["fixtures"]
    user = binding("path.user", "users", 0.9)
    out = [
        "[auth.openapi.userToken]",
        'bearer = "${FUZZ_USER_TOKEN}"',
        "",
        "[auth.openapi.adminToken]",
        'bearer = "${FUZZ_ADMIN_TOKEN}"',
        "",
        "# The stateful phase follows the document's links (issue token -> revoke/use;",
        "# PUT account -> register -> complete/progress/cancel; complete -> webhooks ->",
        "# retry), bounded: this many scenarios of at most this many steps.",
        "[phases.stateful]",
        f"max-steps = {steps}",
        "",
        "[phases.stateful.generation]",
        f"max-examples = {scenarios}",
        "# Chains of valid requests (the other phases send the invalid ones).",
        'mode = "positive"',
        "",
        "# Only the document's own links: links inferred from field names cross providers",
        "# (a MiniMax account id fed to a Kling path) and end in 400s.",
        "[phases.stateful.inference]",
        "algorithms = []",
        "",
        "[dictionaries.users]",
        f"values = {toml_list([info['user']])}",
        "",
        "[dictionaries.tokens]",
        f"values = {toml_list(fixtures['tokens'])}",
        "",
    ]
    for p in PROVIDERS:
        f = fixtures["providers"][p]
        for name in ("capacity", "churn", "jobs", "webhooks", "cursors"):
            if f[name]:
                out += [f"[dictionaries.{p}_{name}]", f"values = {toml_list(f[name])}", ""]
    out += ["[parameters]", user, ""]

    def op(selector, *bindings):
        out.extend(["[[operations]]", selector, "parameters = { " + ", ".join([user, *bindings]) + " }", ""])

    op('include-operation-id = "revokeToken"', binding("body.token", "tokens"))
    for p in PROVIDERS:
        f = fixtures["providers"][p]
        op(f'include-operation-id-regex = "^{p}(PutAccount|DeleteAccount|PauseAccount|ResumeAccount)$"',
           binding("path.account", f"{p}_churn"))
        op(f'include-operation-id = "{p}RegisterJob"', binding(f"body.{ACCOUNT_KEY[p]}", f"{p}_capacity", 0.5))
        op(f'include-operation-id-regex = "^{p}(CompleteJob|ReportProgress)$"', binding("path.id", f"{p}_jobs"))
        op(f'include-operation-id = "{p}Cancel"', binding(f"path.{CANCEL_PARAM.get(p, 'id')}", f"{p}_jobs"))
        op(f'include-operation-id = "{p}RetryWebhook"', binding("path.webhookId", f"{p}_webhooks"))
        if f["cursors"]:
            op(f'include-operation-id = "{p}ListWebhooks"', binding("query.cursor", f"{p}_cursors", 0.5))
    # DELETE …/available and …/live cancel jobs so named (the info description says so):
    # there a DELETE is not the 405 the unsupported_method check expects, so the coverage
    # phase tries the other undocumented methods only.
    out += [
        "[[operations]]",
        'include-path-regex = "/(available|live)$"',
        'phases.coverage.unexpected-methods = ["PUT", "POST", "PATCH"]',
        "",
    ]
    open(out_path, "w").write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
