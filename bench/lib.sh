# Shared by bench/run and bench/instructions: how a target is configured, so that both
# measure the same thing. Source it; it defines functions only.

# closing_floor_manifest SPIN_TOML WASM: prints the manifest of the closing contract floor.
# It is served with the chat-service's configuration surface: every variable spin.toml
# declares, and the four the floor reads mapped into it. Spin 4.0.2 resolves every declared variable through its providers on each
# request's first outbound connection, and that costs (bench/README.md, "What closing
# first costs").
closing_floor_manifest() {
  python3 - "$1" "$2" <<'PY'
import sys, tomllib
variables = tomllib.load(open(sys.argv[1], "rb"))["variables"]
print('spin_manifest_version = 2\n[application]\nname = "bench-floor-closing"\n[variables]')
for name, spec in variables.items():
    fields = ", ".join(f"{k} = {'true' if v is True else 'false' if v is False else repr(v).replace(chr(39), chr(34))}"
                       for k, v in spec.items())
    print(f"{name} = {{ {fields} }}")
print(f'[[trigger.http]]\nroute = "/..."\ncomponent = "floor"\n[component.floor]\nsource = "{sys.argv[2]}"')
print('allowed_outbound_hosts = ["redis://{{ redis_host }}"]\n[component.floor.variables]')
for name in ("redis_url", "mysql_url", "api_key", "rate_limit_per_second"):
    print(f'{name} = "{{{{ {name} }}}}"')
PY
}

# variables_config MANIFEST REDIS_URL MYSQL_URL: prints a runtime config whose static
# provider gives every variable MANIFEST declares (the two URLs as given, the rest their
# defaults), as deploy/ gives them to the chat-service: a variable left to its default
# reaches Spin's environment provider, which costs each request a thread handoff
# (bench/README.md, "Spin's variables, from the environment or a runtime config").
variables_config() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys, tomllib
declared = tomllib.load(open(sys.argv[1], "rb")).get("variables", {})
given = {"redis_url": sys.argv[2], "mysql_url": sys.argv[3]}
values = {}
for name, spec in declared.items():
    value = given.get(name, spec.get("default"))
    if value is None:
        sys.exit(f"bench: {sys.argv[1]}: no value for variable {name}")
    values[name] = value
# A JSON string of printable ASCII is a TOML basic string too.
print('[[variables_provider]]\ntype = "static"\nvalues = { '
      + ", ".join(f"{name} = {json.dumps(value)}" for name, value in values.items()) + " }")
PY
}
