"""Schemathesis against the app's own /openapi.json (issue 9, point 1).

Every operation of the served document is fuzzed through the WSGI app with positive and
negative data, as the caller that uses it: a participant (sandbox login token), an organiser
or an admin (staff token), a reporter (X-Api-Key; the organiser's staff token on the same
routes too), a partner (each request signed on its way in) and the big screen (dashboard
token). Exactly six checks judge every response, and the suite's secret scan reads it too.

The seed is fixed and the number of cases per run is computed so that the whole file makes at
least MIN_CASES requests (about a minute on SQLite). ``TANPU_FUZZ_EXAMPLES=200`` runs deeper,
``TANPU_FUZZ_ONLY="/me"`` fuzzes the operations whose label contains it, and
``TANPU_FUZZ_TRACE=1`` prints every request and status.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend import create_app
from backend.extensions import db
from tests import conftest as suite
from tests.fuzz.fuzz_world import SIGN_MARKER, PartnerSigner, World, build_world
from tests.support.secrets import REGISTRY

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection]
SEED = 20261109
MIN_CASES = 2000
TARGET_CASES = 2400  # a margin over MIN_CASES: operations without inputs make one case
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
EXAMPLES = int(os.environ.get("TANPU_FUZZ_EXAMPLES", "0"))
ONLY = os.environ.get("TANPU_FUZZ_ONLY", "")
TRACE = bool(os.environ.get("TANPU_FUZZ_TRACE"))
SIGNATURE_HEADERS = ("X-Tanpu-Timestamp", "X-Tanpu-Nonce", "X-Tanpu-Signature")
CREDENTIAL_HEADERS = ("Authorization", "X-Api-Key", *SIGNATURE_HEADERS)
ANONYMOUS = {"/healthz", "/readyz", "/api/v1/auth/wechat-login", "/api/v1/staff/login",
             "/api/v1/campaigns", "/api/v1/campaigns/{slug}", "/api/v1/campaigns/{slug}/progress"}
SUMMARY: list[str] = []  # printed at the end of the session (tests/fuzz/conftest.py)
# schemathesis' own settings, not a schemathesis.toml found in the working directory. Invalid
# data may also be refused with 413: a list longer than its maxItems can be over 1 MiB.
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]}}}


@pytest.fixture(scope="module")
def world(database_url, secret_key):
    environ = suite.test_environ(database_url, SECRET_KEY=secret_key)
    app = create_app(environ=environ)
    app.test_client_class = suite.ScanningClient
    built = build_world(app)
    app.wsgi_app = PartnerSigner(app.wsgi_app, built.secret)
    yield built
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    suite._empty_tables(create_app(environ=environ))
    suite._flush_test_redis()


# -- who calls what, on which objects ----------------------------------------------------------

def roles_of(path: str) -> list[str]:
    """The callers an operation is fuzzed as."""
    if path.startswith("/api/v1/admin/campaigns/{slug}"):
        return ["organiser"]
    if path.startswith("/api/v1/admin/"):
        return ["admin"]
    if path.startswith("/api/v1/reports/"):
        return ["reporter", "organiser"]
    if path.startswith("/api/v1/partners/"):
        return ["partner"]
    if path.endswith("/dashboard"):
        return ["dashboard"]
    if path in ANONYMOUS:
        return ["anonymous"]
    return ["participant"]


def negates_credentials(case) -> bool:
    """Whether a negative case's invalid part is a credential header (left out or malformed):
    then it goes out as generated, and the server must refuse it."""
    meta = case.meta
    header = meta.components.get(ParameterLocation.HEADER) if meta else None
    if header is None or not header.mode.is_negative:
        return False
    mutations = [m for m in getattr(meta.phase.data, "mutations", ())
                 if m.parameter_location == ParameterLocation.HEADER]
    return not mutations or any(m.parameter is None or m.parameter in CREDENTIAL_HEADERS
                                for m in mutations)


def credentials_for(world: World, role: str, operation, case, mode) -> dict[str, str]:
    """The role's real credentials in place of the placeholders schemathesis generates for the
    documented security schemes (a partner's request is marked, and signed on its way in)."""
    if mode.is_negative and negates_credentials(case):
        return {}
    for name in CREDENTIAL_HEADERS:
        if case.headers and name in case.headers:
            del case.headers[name]
    if role == "partner":
        return {SIGN_MARKER: "1"}
    if role == "participant" and (operation.method.upper(), operation.path) == (
            "DELETE", "/api/v1/me"):
        return world.fresh_participant()  # erasing the run's own participant would end it
    return {"participant": world.participant, "organiser": world.organiser,
            "admin": world.admin, "reporter": world.reporter,
            "dashboard": world.dashboard}.get(role, {})


def fixed_path_parameters(world: World, operation) -> dict[str, object]:
    """Real objects for the path's variables (credential ids by the kind in the path)."""
    fixed = {}
    for parameter in operation.path_parameters:
        name = parameter.name
        if name == "credential_id":
            fixed[name] = world.path_parameters[operation.path.split("/")[-2]]
        elif name in world.path_parameters:
            fixed[name] = world.path_parameters[name]
    return fixed


def has_inputs_besides_the_path(operation) -> bool:
    return bool(len(operation.body) or len(operation.query) or len(operation.headers))


# -- running -----------------------------------------------------------------------------------

@dataclass
class Run:
    label: str
    role: str
    mode: GenerationMode
    cases: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    failure: str | None = None

    def line(self) -> str:
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items()))
        return (f"{self.label:66} {self.role:11} {self.mode.value:8} {self.cases:4} "
                f"{self.seconds:5.1f}s {statuses}")


def scan(response) -> None:
    """The suite's secret scan, on the fuzzer's responses too."""
    text = response.content.decode("utf-8", "replace") + "\n" + "\n".join(
        f"{name}: {value}" for name, values in response.headers.items() for value in values)
    leaks = REGISTRY.leaks_in(text)
    assert not leaks, f"secret(s) in a response: {leaks}"


def describe(error: BaseException) -> str:
    """The failure with what it wraps (hypothesis' Flaky and exception groups hide it)."""
    text = f"{type(error).__name__}: {error}"
    for inner in getattr(error, "exceptions", ()):
        text += "\n  " + describe(inner).replace("\n", "\n  ")
    return text


def fuzz(world: World, operation, run: Run, examples: int) -> None:
    """Up to ``examples`` cases of one operation, role and mode; fills in ``run``."""
    # Positive cases act on real objects. Negative cases do too when something else can be
    # made invalid (a body, a query or a header); otherwise the path variables are what goes
    # wrong (each documented with its format, so a wrong one names nothing: 404).
    other_inputs = has_inputs_besides_the_path(operation)
    fixed = run.mode.is_positive or other_inputs
    strategy = operation.as_strategy(
        run.mode, path_parameters=fixed_path_parameters(world, operation) if fixed else None)

    @seed(SEED)
    @settings(max_examples=examples, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        run.cases += 1
        headers = credentials_for(world, run.role, operation, case, run.mode)
        response = case.call(headers=headers)
        run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
        if TRACE:
            print(case.method, case.formatted_path, case.query, dict(case.headers or {}),
                  repr(case.body)[:200], "->", response.status_code, response.content[:200])
        scan(response)
        case.validate_response(response, checks=CHECKS, headers=headers)

    started = time.monotonic()
    try:
        check()
    except Unsatisfiable as error:
        if run.mode.is_positive or other_inputs or len(operation.path_parameters):
            run.failure = describe(error)
        # else: nothing in the request can be made invalid (GET /healthz)
    except (Exception, BaseExceptionGroup) as error:  # a check failed: report it with the rest
        run.failure = describe(error)
    run.seconds = time.monotonic() - started


@pytest.mark.timeout(900)
def test_every_operation_conforms_to_the_served_document(world):
    started = time.monotonic()
    schema = schemathesis.openapi.from_wsgi("/openapi.json", world.app,
                                            config=schemathesis.Config.from_dict(CONFIG))
    operations = [result.ok() for result in schema.get_all_operations()]
    plan = [(operation, Run(operation.label, role, mode)) for operation in operations
            if ONLY in operation.label for role in roles_of(operation.path) for mode in MODES]
    examples = EXAMPLES or math.ceil(TARGET_CASES / len(plan))
    for operation, run in plan:
        fuzz(world, operation, run, examples)
    runs = [run for _, run in plan]
    total = sum(run.cases for run in runs)
    failures = [f"{run.label} as {run.role} ({run.mode.value}):\n{run.failure}"
                for run in runs if run.failure]
    SUMMARY.append(f"schemathesis {schemathesis.__version__}: {total} cases, {len(runs)} runs "
                   f"over {len(operations)} operations, {examples} examples each, seed {SEED}, "
                   f"{time.monotonic() - started:.0f} s, {len(failures)} failing")
    if TRACE:
        SUMMARY.extend(run.line() for run in runs)
    assert not failures, "\n\n".join(failures) + "\n\n" + "\n".join(r.line() for r in runs)
    if not ONLY:
        assert total >= MIN_CASES, "\n".join(run.line() for run in runs)
        documented = {operation.label for operation in operations}
        assert documented == {run.label for run in runs if run.cases}, "an operation went unfuzzed"
