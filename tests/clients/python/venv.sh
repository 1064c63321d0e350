#!/usr/bin/env bash
# Creates (once, while requirements.txt is unchanged) the Python venv the
# client scenarios run in, and prints its python's path. Used by run.sh and
# by Rust tests that drive a Python client (tests/tls.rs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$here/.venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
echo "$venv/bin/python"
