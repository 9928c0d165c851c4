#!/usr/bin/env bash
# End-to-end check of the Pulumi CLI + dcops' Python language host built by
# scripts/install-tools: a local-backend stack with config, an exported output and a
# pulumi.dynamic resource goes through `stack init`, `up`, `preview` (no changes)
# and `destroy`; a program that raises must fail `pulumi up` with its traceback shown.
#
# Needs: python3 (with venv), the pulumi Python package (pip install pulumi==<version>;
# the venv is cached under $DCOPS_CACHE/tools, or give one with SMOKE_VENV=/path/to/venv).
set -euo pipefail

CACHE=${DCOPS_CACHE:-$HOME/.cache/dcops}
BIN=${SMOKE_BIN:-$CACHE/tools/bin}
PULUMI_VERSION=3.255.0

for b in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
  [[ -x $BIN/$b ]] || { echo "missing $BIN/$b: run scripts/install-tools first" >&2; exit 1; }
done

venv=${SMOKE_VENV:-$CACHE/tools/smoke-venv-$PULUMI_VERSION}
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import pulumi" 2>/dev/null; then
  echo "[smoke] creating $venv with pulumi==$PULUMI_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q "pulumi==$PULUMI_VERSION"
fi

work=$(mktemp -d /tmp/dcops-smoke.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

export PATH="$BIN:$PATH"
export PULUMI_HOME=$work/pulumi-home
export PULUMI_BACKEND_URL="file://$work/state"
echo "smoke-test-passphrase" >"$work/passphrase"
export PULUMI_CONFIG_PASSPHRASE_FILE=$work/passphrase
unset PULUMI_CONFIG_PASSPHRASE PULUMI_PYTHON_CMD
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
mkdir -p "$work/state"

passed=0
failed=0
ok() { echo "[smoke] PASS: $*"; passed=$((passed + 1)); }
bad() { echo "[smoke] FAIL: $*"; failed=$((failed + 1)); }
run() { # run and keep the output in $work/last.log
  echo "[smoke] \$ $*"
  "$@" >"$work/last.log" 2>&1
}
show() { sed 's/^/    | /' "$work/last.log"; }

# --- 1. a working program: config, output, dynamic resource ---------------------
proj=$work/good
mkdir -p "$proj"
ln -s "$venv" "$proj/venv"
cat >"$proj/Pulumi.yaml" <<'EOF'
name: smoke
runtime:
  name: python
  options:
    virtualenv: venv
EOF
cat >"$proj/__main__.py" <<'EOF'
import os

import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class FileProvider(ResourceProvider):
    def create(self, props):
        with open(props["path"], "w") as f:
            f.write(props["content"])
        return CreateResult(id_=props["path"], outs=props)

    def delete(self, id, props):
        os.remove(id)


class File(Resource):
    def __init__(self, name, path, content, opts=None):
        super().__init__(FileProvider(), name, {"path": path, "content": content}, opts)


config = pulumi.Config()
greeting = config.require("greeting")
token = config.require_secret("token")
f = File("marker", config.require("path"), greeting)
pulumi.export("greeting", greeting)
pulumi.export("file_id", f.id)
pulumi.export("token", token)
EOF
marker=$work/marker.txt
cd "$proj"
if run pulumi stack init dev; then ok "stack init"; else bad "stack init"; show; fi
pulumi config set greeting hello-dcops >/dev/null
pulumi config set path "$marker" >/dev/null
pulumi config set --secret token s3cr3t >/dev/null
if run pulumi up --yes --skip-preview; then ok "pulumi up"; else bad "pulumi up"; show; fi
if [[ $(cat "$marker" 2>/dev/null) == hello-dcops ]]; then ok "dynamic resource wrote $marker"; else bad "marker file missing"; fi
if [[ $(pulumi stack output greeting 2>/dev/null) == hello-dcops ]]; then ok "stack output"; else bad "stack output"; fi
if [[ $(pulumi stack output token 2>/dev/null) == "[secret]" && $(pulumi stack output token --show-secrets 2>/dev/null) == s3cr3t ]]; then
  ok "secret config stays secret"
else
  bad "secret config"
fi
if run pulumi preview --expect-no-changes; then ok "preview shows no changes"; else bad "preview"; show; fi
if run pulumi destroy --yes --skip-preview; then ok "pulumi destroy"; else bad "pulumi destroy"; show; fi
if [[ ! -e $marker ]]; then ok "dynamic resource deleted"; else bad "marker file still there"; fi
run pulumi stack rm --yes dev || true

# --- 2. a failing program: the traceback must be shown ------------------------
# (interpreter chosen through PULUMI_PYTHON_CMD this time, no virtualenv option)
proj=$work/bad
mkdir -p "$proj"
cat >"$proj/Pulumi.yaml" <<'EOF'
name: smoke-bad
runtime: python
EOF
cat >"$proj/__main__.py" <<'EOF'
import pulumi


def broken_helper():
    raise ValueError("dcops smoke: deliberate failure")


pulumi.export("before", 1)
broken_helper()
EOF
cd "$proj"
PULUMI_PYTHON_CMD=$venv/bin/python run pulumi stack init dev || true
if PULUMI_PYTHON_CMD=$venv/bin/python run pulumi up --yes --skip-preview; then
  bad "pulumi up of a raising program succeeded"
  show
elif grep -q "Traceback" "$work/last.log" && grep -q "broken_helper" "$work/last.log" &&
  grep -q "ValueError: dcops smoke: deliberate failure" "$work/last.log"; then
  ok "failing program fails pulumi up with its traceback"
else
  bad "failing program: traceback not shown"
  show
fi

echo "$passed passed, $failed failed"
((failed == 0))
