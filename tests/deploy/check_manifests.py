"""Checks the SpinKube manifests in deploy/ against what the cluster and the app need.

    target/py/bin/python tests/deploy/check_manifests.py      (run by tests/manifests.rs)

(a) Every SpinApp is validated against the openAPIV3Schema of SpinKube's SpinApp CRD,
    with unknown fields rejected as `kubectl apply` (strict field validation) rejects them.
(b) What the deployment depends on: the containerd-shim-spin executor; replicas or an
    autoscaler that targets the app's Deployment; CPU and memory limits and requests;
    the variables from a runtime configuration (`runtimeConfig.loadFromSecret`, nothing
    else in `runtimeConfig`, no `variables`) held in a Secret of deploy/ under its one key
    runtime-config.toml, whose first variables provider is a static one giving every
    variable spin.toml declares, and no other, a string each (one left to Spin's
    environment provider costs a thread handoff per request), none that defaults to this
    machine still naming it (127.0.0.1 inside a pod is the pod); liveness and readiness
    probes on distinct paths that spin.toml routes explicitly (not only through the
    catch-all); SpinApps of the same name stay identical apart from how they scale.
(c) docker-compose.yml (no Docker on the build machines to run it) parses, and keeps what
    docs/local.md and docs/operations.md say it does: Redis with an append-only file and
    no eviction, MariaDB loading the Rails schema, both on the ports the defaults expect.

Before checking the real manifests it checks broken copies of them, each of which must be
rejected for its own reason, so a checker that accepts everything cannot pass.

The CRD is kept in the repository, in tests/deploy/spinkube/ (its README says which
operator version it is and how to update it), and read from there only: without it the
check fails.
"""

import base64
import copy
import re
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFEST = ROOT / "spin.toml"
COMPOSE = ROOT / "docker-compose.yml"
CRD = ROOT / "tests" / "deploy" / "spinkube" / "core.spinkube.dev_spinapps.yaml"
EXECUTOR = "containerd-shim-spin"
SPINAPP_API = "core.spinkube.dev/v1alpha1"
# Defaults that only make sense on a developer machine.
LOOPBACK = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])")
# The one key of a runtime configuration Secret (SpinApp CRD, runtimeConfig.loadFromSecret).
RUNTIME_CONFIG_KEY = "runtime-config.toml"


def find_crd():
    if not CRD.is_file():
        sys.exit(
            f"check_manifests: SpinKube's SpinApp CRD is missing: {CRD}\n"
            "It is part of the repository (see tests/deploy/spinkube/README.md): restore it."
        )
    return CRD


def strict(schema):
    """The CRD schema with unknown fields refused wherever the CRD lists the fields."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def load_spinapp_schema(crd_path):
    crd = yaml.safe_load(crd_path.read_text())
    versions = [v for v in crd["spec"]["versions"] if v["name"] == SPINAPP_API.split("/")[1]]
    if not versions:
        sys.exit(f"check_manifests: {crd_path} has no {SPINAPP_API} version")
    return strict(versions[0]["schema"]["openAPIV3Schema"])


def load_documents():
    """(file relative to deploy/, document) for every YAML document under deploy/."""
    docs = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((str(path.relative_to(DEPLOY)), doc))
    return docs


def load_spin_manifest():
    manifest = tomllib.loads(MANIFEST.read_text())
    routes = [t["route"] for t in manifest.get("trigger", {}).get("http", [])]
    return manifest.get("variables", {}), routes


# --- quantities ------------------------------------------------------------------------

SUFFIX = {
    "": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def quantity(value):
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    if not m or m.group(2) not in SUFFIX:
        raise ValueError(f"unsupported quantity {value!r}")
    return float(m.group(1)) * SUFFIX[m.group(2)]


# --- the checks ------------------------------------------------------------------------


def check(docs, schema, variables, routes):
    """Every problem found, as `file: message` lines; empty when all is well."""
    errors = []
    spinapps = [(f, d) for f, d in docs if d.get("kind") == "SpinApp"]
    secrets = {d["metadata"]["name"]: (f, d) for f, d in docs if d.get("kind") == "Secret"}
    scalers = [
        (f, d)
        for f, d in docs
        if d.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject")
    ]
    if not spinapps:
        errors.append("deploy/: no SpinApp")

    validator = jsonschema.Draft7Validator(schema)
    for file, app in spinapps:
        for e in validator.iter_errors(app):
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            errors.append(f"{file}: schema: {where}: {e.message}")
        if app.get("apiVersion") != SPINAPP_API:
            errors.append(f"{file}: apiVersion is {app.get('apiVersion')!r}, not {SPINAPP_API}")
        spec = app.get("spec") or {}
        name = (app.get("metadata") or {}).get("name")
        errors += [f"{file}: {m}" for m in check_spec(spec, variables, routes, secrets)]
        errors += [
            f"{file}: {m}"
            for m in check_scaling(file, name, spec, scalers)
        ]

    for file, scaler in scalers:
        errors += [f"{file}: {m}" for m in check_scaler_target(file, scaler, spinapps)]

    # Two variants of one app (fixed size, autoscaled) must not drift apart.
    by_name = {}
    for file, app in spinapps:
        by_name.setdefault(app.get("metadata", {}).get("name"), []).append((file, app))
    for name, variants in by_name.items():
        base_file, base = variants[0]
        for file, other in variants[1:]:
            if scaling_stripped(base) != scaling_stripped(other):
                errors.append(
                    f"{file}: SpinApp {name} differs from {base_file} in more than replicas/enableAutoscaling"
                )
    return errors


def scaling_stripped(app):
    app = copy.deepcopy(app)
    app.get("spec", {}).pop("replicas", None)
    app.get("spec", {}).pop("enableAutoscaling", None)
    return app


def check_spec(spec, variables, routes, secrets):
    errors = []
    if spec.get("executor") != EXECUTOR:
        errors.append(f"executor is {spec.get('executor')!r}, not {EXECUTOR}")

    resources = spec.get("resources") or {}
    for kind in ("limits", "requests"):
        for res in ("cpu", "memory"):
            if res not in (resources.get(kind) or {}):
                errors.append(f"resources.{kind}.{res} is not set")
    for res in ("cpu", "memory"):
        try:
            limit = resources.get("limits", {}).get(res)
            request = resources.get("requests", {}).get(res)
            if limit is not None and request is not None and quantity(request) > quantity(limit):
                errors.append(f"resources.requests.{res} ({request}) exceeds the limit ({limit})")
        except (ValueError, AttributeError) as e:
            errors.append(f"resources.{res}: {e}")

    errors += check_runtime_config(spec, variables, secrets)

    checks = spec.get("checks") or {}
    paths = {}
    for probe in ("liveness", "readiness"):
        path = ((checks.get(probe) or {}).get("httpGet") or {}).get("path")
        if not path:
            errors.append(f"checks.{probe}.httpGet.path is not set")
            continue
        paths[probe] = path
        if path not in routes:
            errors.append(
                f"checks.{probe} path {path} is not a route of spin.toml (routes: {', '.join(routes)})"
            )
    if len(paths) == 2 and paths["liveness"] == paths["readiness"]:
        errors.append("liveness and readiness probe the same path: a backend outage would restart the pods")
    return errors


def check_runtime_config(spec, variables, secrets):
    """Every spin.toml variable from the static provider of the runtime config Secret.

    Spin asks `--variable`, then the runtime config's providers in order, then the
    environment (SPIN_VARIABLE_*, which the SpinApp's `variables` become), then the
    defaults; its environment provider costs a thread handoff per request for as little as
    one variable reaching it, and Spin resolves every declared variable per request.
    """
    errors = []
    if spec.get("variables"):
        errors.append(
            "spec.variables is set: every variable comes from the static provider of the "
            "runtime config, which Spin asks before the environment (SPIN_VARIABLE_*), so "
            "these would be shadowed or bring back the environment provider's handoff"
        )
    runtime = spec.get("runtimeConfig") or {}
    name = runtime.get("loadFromSecret")
    if not name:
        errors.append(
            "runtimeConfig.loadFromSecret is not set: the variables would reach Spin's "
            "environment provider, a thread handoff per request"
        )
        return errors
    for field in sorted(set(runtime) - {"loadFromSecret"}):
        errors.append(
            f"runtimeConfig.{field} is ignored: loadFromSecret is set, and then the operator "
            "reads the Secret only"
        )
    if name not in secrets:
        errors.append(
            f"runtimeConfig.loadFromSecret names {name!r}, which no Secret in deploy/ defines "
            "(deploy/ keeps an example of it, which this check reads)"
        )
        return errors
    secret_file, secret = secrets[name]
    where = f"Secret {name} ({secret_file})"
    keys = {
        **{k: ("data", v) for k, v in (secret.get("data") or {}).items()},
        **{k: ("stringData", v) for k, v in (secret.get("stringData") or {}).items()},
    }
    if RUNTIME_CONFIG_KEY not in keys:
        errors.append(f"{where} has no key {RUNTIME_CONFIG_KEY!r}")
        return errors
    others = sorted(set(keys) - {RUNTIME_CONFIG_KEY})
    if others:
        errors.append(
            f"{where} has keys besides {RUNTIME_CONFIG_KEY}: {', '.join(others)} "
            "(the operator takes that one only)"
        )
    form, text = keys[RUNTIME_CONFIG_KEY]
    try:
        if form == "data":
            text = base64.b64decode(str(text), validate=True).decode()
        config = tomllib.loads(str(text))
    except (ValueError, UnicodeDecodeError) as e:  # TOMLDecodeError and binascii.Error are ValueErrors
        errors.append(f"{where}: {RUNTIME_CONFIG_KEY} is not TOML: {e}")
        return errors
    where = f"{where} {RUNTIME_CONFIG_KEY}"

    providers = config.get("variables_provider")
    if not isinstance(providers, list):
        providers = []
    statics = [i for i, p in enumerate(providers) if isinstance(p, dict) and p.get("type") == "static"]
    if len(statics) != 1:
        errors.append(f"{where} has {len(statics)} [[variables_provider]] of type static, not one")
        if not statics:
            return errors
    first = statics[0]
    for i in range(first):
        kind = providers[i].get("type") if isinstance(providers[i], dict) else providers[i]
        errors.append(
            f"{where}: variables_provider[{i}] ({kind}) comes before the static one: "
            "Spin asks it first for every variable, on every request"
        )
    values = providers[first].get("values")
    if not isinstance(values, dict):
        errors.append(f"{where}: the static provider has no `values` table")
        return errors
    for var in sorted(set(variables) - set(values)):
        errors.append(
            f"{where}: the static provider has no value for {var} (declared in spin.toml): "
            "it falls to the environment provider, a thread handoff per request"
        )
    for var in sorted(set(values) - set(variables)):
        errors.append(f"{where}: the static provider sets {var}, which spin.toml does not declare")
    for var, value in sorted(values.items()):
        if not isinstance(value, str):
            errors.append(f"{where}: the static provider's {var} is {value!r}, not a string")
        elif LOOPBACK.search(str(variables.get(var, {}).get("default", ""))) and LOOPBACK.search(value):
            errors.append(
                f"{where}: the static provider's {var} names this machine ({value}): "
                "127.0.0.1 inside a pod is the pod itself"
            )
    return errors


def check_scaling(file, name, spec, scalers):
    errors = []
    autoscaled = spec.get("enableAutoscaling") is True
    same_dir = [
        d for f, d in scalers
        if Path(f).parent == Path(file).parent and target_name(d) == name
    ]
    if autoscaled:
        if "replicas" in spec:
            errors.append("replicas is set although enableAutoscaling is true (the CRD excludes both)")
        if not same_dir:
            errors.append(f"enableAutoscaling is true but no autoscaler beside it targets {name}")
    else:
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or replicas < 2:
            errors.append(f"replicas is {replicas!r}: at least 2, so one pod down still serves")
    return errors


def target_name(scaler):
    return ((scaler.get("spec") or {}).get("scaleTargetRef") or {}).get("name")


def check_scaler_target(file, scaler, spinapps):
    errors = []
    spec = scaler.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    # The operator creates a Deployment named after the SpinApp; the SpinApp itself has
    # no scale subresource.
    if ref.get("kind") != "Deployment" or ref.get("apiVersion") != "apps/v1":
        errors.append(f"scaleTargetRef is {ref.get('apiVersion')}/{ref.get('kind')}, not apps/v1/Deployment")
    targets = [
        (f, a) for f, a in spinapps
        if Path(f).parent == Path(file).parent and (a.get("metadata") or {}).get("name") == ref.get("name")
    ]
    if not targets:
        errors.append(f"scaleTargetRef names {ref.get('name')!r}, no SpinApp beside it")
        return errors
    app_spec = targets[0][1].get("spec") or {}
    if app_spec.get("enableAutoscaling") is not True:
        errors.append(f"targets SpinApp {ref.get('name')} whose enableAutoscaling is not true")
    if scaler.get("kind") == "HorizontalPodAutoscaler":
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if not isinstance(high, int) or not isinstance(low, int) or not 2 <= low <= high:
            errors.append(f"minReplicas {low!r} / maxReplicas {high!r}: need 2 <= min <= max")
        for metric in spec.get("metrics") or []:
            resource = (metric.get("resource") or {}).get("name")
            target = ((metric.get("resource") or {}).get("target") or {}).get("type")
            requests = (app_spec.get("resources") or {}).get("requests") or {}
            if target == "Utilization" and resource not in requests:
                errors.append(f"{resource} utilization is measured against a request the SpinApp does not set")
    return errors


def check_compose(compose):
    errors = []
    services = (compose or {}).get("services") or {}
    redis, mariadb = services.get("redis") or {}, services.get("mariadb") or {}
    command = " ".join(str(c) for c in redis.get("command") or [])
    for setting in ("--appendonly yes", "--maxmemory-policy noeviction"):
        if setting not in command:
            errors.append(f"docker-compose.yml: redis does not run with {setting}")
    for name, service, port in (("redis", redis, 6379), ("mariadb", mariadb, 3306)):
        if not any(str(p).endswith(f":{port}:{port}") for p in service.get("ports") or []):
            errors.append(f"docker-compose.yml: {name} does not publish {port}")
    mounts = [str(v).split(":") for v in mariadb.get("volumes") or []]
    schema = [m for m in mounts if m[0] == "./tests/rails/schema.sql"]
    if not schema or not schema[0][1].startswith("/docker-entrypoint-initdb.d/"):
        errors.append("docker-compose.yml: mariadb does not load tests/rails/schema.sql on first start")
    elif not (ROOT / schema[0][0]).is_file():
        errors.append(f"docker-compose.yml: {schema[0][0]} does not exist")
    if (mariadb.get("environment") or {}).get("MARIADB_DATABASE") != "chat_system_development":
        errors.append("docker-compose.yml: mariadb does not create chat_system_development")
    return errors


# --- proof that the checks can fail ----------------------------------------------------


def breakages():
    """(description, expected error fragment, mutation of the document list)."""

    def spinapp(docs, autoscaled=False):
        for _, d in docs:
            if d.get("kind") == "SpinApp" and bool(d["spec"].get("enableAutoscaling")) == autoscaled:
                return d
        raise AssertionError("the manifests lost a SpinApp variant the self-test needs")

    def hpa(docs):
        return next(d for _, d in docs if d.get("kind") == "HorizontalPodAutoscaler")

    def runtime_secret(docs):
        name = spinapp(docs)["spec"]["runtimeConfig"]["loadFromSecret"]
        return next(d for _, d in docs if d.get("kind") == "Secret" and d["metadata"]["name"] == name)

    def edit(pattern, replacement):
        """An edit of the runtime config's TOML text, which must find what it edits."""
        def mutate(docs):
            data = runtime_secret(docs)["stringData"]
            text, count = re.subn(pattern, replacement, data[RUNTIME_CONFIG_KEY], count=1, flags=re.M)
            if not count:
                raise AssertionError(f"the runtime config lost what the self-test edits: {pattern}")
            data[RUNTIME_CONFIG_KEY] = text
        return mutate

    def as_data(then):
        def mutate(docs):
            then(docs)
            secret = runtime_secret(docs)
            text = secret.pop("stringData")[RUNTIME_CONFIG_KEY]
            secret["data"] = {RUNTIME_CONFIG_KEY: base64.b64encode(text.encode()).decode()}
        return mutate

    def rename_key(new):
        def mutate(docs):
            data = runtime_secret(docs)["stringData"]
            data[new] = data.pop(RUNTIME_CONFIG_KEY)
        return mutate

    def set_(path, value, autoscaled=False):
        def mutate(docs):
            node = spinapp(docs, autoscaled)
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        return mutate

    def drop(path, autoscaled=False):
        def mutate(docs):
            node = spinapp(docs, autoscaled)
            for key in path[:-1]:
                node = node[key]
            del node[path[-1]]
        return mutate

    def retarget(name):
        def mutate(docs):
            hpa(docs)["spec"]["scaleTargetRef"]["name"] = name
        return mutate

    return [
        ("no executor", "executor is None", drop(["spec", "executor"])),
        ("another executor", "not containerd-shim-spin", set_(["spec", "executor"], "spintainer")),
        ("replicas as a string", "schema: spec/replicas", set_(["spec", "replicas"], "3")),
        ("a misspelt field", "schema: spec", set_(["spec", "replica"], 3)),
        ("a misspelt probe field", "schema: spec/checks/readiness", set_(["spec", "checks", "readiness", "path"], "/ready")),
        ("no image", "'image' is a required property", drop(["spec", "image"])),
        ("one replica", "replicas is 1", set_(["spec", "replicas"], 1)),
        ("no memory limit", "resources.limits.memory", drop(["spec", "resources", "limits", "memory"])),
        ("request above limit", "exceeds the limit", set_(["spec", "resources", "requests", "cpu"], "2")),
        ("no runtime config", "runtimeConfig.loadFromSecret is not set", drop(["spec", "runtimeConfig"])),
        ("a runtime config Secret deploy/ does not define", "which no Secret in deploy/ defines", set_(["spec", "runtimeConfig", "loadFromSecret"], "chat-service")),
        ("runtime config beside the Secret", "runtimeConfig.keyValueStores is ignored", set_(["spec", "runtimeConfig", "keyValueStores"], [{"name": "default", "type": "redis"}])),
        ("variables in the SpinApp too", "spec.variables is set", set_(["spec", "variables"], [{"name": "api_key", "value": ""}])),
        ("the Secret without its key", "has no key 'runtime-config.toml'", rename_key("runtime.toml")),
        ("an old key beside it", "has keys besides runtime-config.toml: redis_url", lambda docs: runtime_secret(docs)["stringData"].update(redis_url="redis://redis:6379")),
        ("not TOML", "is not TOML", edit(r"^\[\[variables_provider\]\]$", "[[variables_provider]")),
        ("no static provider", "0 [[variables_provider]] of type static", edit(r'^type = "static"$', 'type = "env"')),
        ("the environment asked first", "variables_provider[0] (env) comes before the static one", edit(r"\A", '[[variables_provider]]\ntype = "env"\n\n')),
        ("two static providers", "2 [[variables_provider]] of type static", edit(r"\Z", '\n[[variables_provider]]\ntype = "static"\nvalues = {}\n')),
        ("a variable left to the environment", "no value for idempotency_key_seconds", edit(r"^idempotency_key_seconds = .*\n", "")),
        ("base64 data without api_key", "no value for api_key", as_data(edit(r"^api_key = .*\n", ""))),
        ("an undeclared variable", "sets redis_uri, which spin.toml does not declare", edit(r"^(redis_url = .*)$", '\\1\nredis_uri = "redis://redis:6379"')),
        ("a number, not a string", "mysql_max_connections is 10, not a string", edit(r'^mysql_max_connections = "10"$', "mysql_max_connections = 10")),
        ("redis_host left at its default", "redis_host names this machine", edit(r"^redis_host = .*$", 'redis_host = "127.0.0.1:6379"')),
        ("readiness on a path spin.toml does not route", "not a route of spin.toml", set_(["spec", "checks", "readiness", "httpGet", "path"], "/readyz")),
        ("readiness on the liveness path", "probe the same path", set_(["spec", "checks", "readiness", "httpGet", "path"], "/health")),
        ("no liveness probe", "checks.liveness.httpGet.path", drop(["spec", "checks", "liveness"])),
        ("replicas with autoscaling", "replicas is set although", set_(["spec", "replicas"], 3, autoscaled=True)),
        ("autoscaler aimed elsewhere", "no SpinApp beside it", retarget("chat-service-old")),
        ("the two variants drifting apart", "differs from", set_(["spec", "resources", "limits", "cpu"], "2", autoscaled=True)),
    ]


def compose_breakages():
    def redis_command(compose):
        return compose["services"]["redis"]["command"]

    return [
        ("Redis without its append-only file", "--appendonly yes",
         lambda c: redis_command(c).__setitem__(redis_command(c).index("--appendonly") + 1, "no")),
        ("MariaDB without the schema", "does not load tests/rails/schema.sql",
         lambda c: c["services"]["mariadb"].pop("volumes")),
        ("MariaDB on another port", "mariadb does not publish 3306",
         lambda c: c["services"]["mariadb"].__setitem__("ports", ["127.0.0.1:3307:3306"])),
    ]


def self_test(docs, schema, variables, routes, compose):
    failures = []
    for description, expected, mutate in breakages():
        broken = copy.deepcopy(docs)
        mutate(broken)
        errors = check(broken, schema, variables, routes)
        if not any(expected in e for e in errors):
            failures.append(f"  {description}: expected an error containing {expected!r}, got {errors}")
    for description, expected, mutate in compose_breakages():
        broken = copy.deepcopy(compose)
        mutate(broken)
        errors = check_compose(broken)
        if not any(expected in e for e in errors):
            failures.append(f"  {description}: expected an error containing {expected!r}, got {errors}")
    return failures


def main():
    crd = find_crd()
    schema = load_spinapp_schema(crd)
    variables, routes = load_spin_manifest()
    docs = load_documents()
    compose = yaml.safe_load(COMPOSE.read_text())

    failures = self_test(docs, schema, variables, routes, compose)
    if failures:
        print("check_manifests: the checker accepted broken manifests:", *failures, sep="\n")
        return 1
    count = len(breakages()) + len(compose_breakages())
    print(f"check_manifests: {count} broken copies rejected, each for its own reason")

    errors = check(docs, schema, variables, routes) + check_compose(compose)
    if errors:
        print("check_manifests: deploy/ has problems:", *("  " + e for e in errors), sep="\n")
        return 1
    kinds = ", ".join(f"{f} ({d['kind']})" for f, d in docs)
    print(f"check_manifests: deploy/ passes against {crd.relative_to(ROOT)}: {kinds}; docker-compose.yml too")
    return 0


if __name__ == "__main__":
    sys.exit(main())
