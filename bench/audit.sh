#!/bin/sh
# Dependency audit of requirements.lock with pip-audit, from a throwaway venv (pip-audit is a tool
# run against the lock, not a dependency of protoserve). It asks a vulnerability service over the
# network (PyPI's JSON API, or OSV with `-s osv`): without network access it cannot audit.
set -e
venv="${TMPDIR:-/tmp}/protoserve-pip-audit"
[ -x "$venv/bin/pip-audit" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet pip-audit; }
exec "$venv/bin/pip-audit" -r requirements.lock --no-deps --disable-pip --progress-spinner off "$@"
