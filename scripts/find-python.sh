#!/bin/sh
# find-python.sh — print the path of a Python interpreter livestrat can run on (3.12 or 3.13,
# with venv), or say exactly what to install and exit 1.
#
# NautilusTrader 1.222 and later require Python >= 3.12 (pyproject.toml: requires-python).
# Order: $PYTHON if set; python3.13 / python3.12 / python3 on PATH; then pyenv's versions
# (pyenv's shims answer "command not found" for a version that is installed but not
# selected, so each candidate is run, not just looked up).
set -eu

fits() {  # fits EXE: true when EXE runs, is 3.12 or 3.13, and has venv + ensurepip
    "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if (3, 12) <= sys.version_info[:2] <= (3, 13) else 1)' \
        >/dev/null 2>&1
}

if [ -n "${PYTHON:-}" ]; then
    if fits "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
    echo "find-python: PYTHON=$PYTHON is not a Python 3.12 or 3.13 with venv; unset it or point it at one" >&2
    exit 1
fi

for exe in python3.13 python3.12 python3; do
    if fits "$exe"; then
        "$exe" -c 'import sys; print(sys.executable)'
        exit 0
    fi
done

PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
for dir in "$PYENV_ROOT"/versions/3.13* "$PYENV_ROOT"/versions/3.12*; do
    if [ -x "$dir/bin/python" ] && fits "$dir/bin/python"; then
        echo "$dir/bin/python"
        exit 0
    fi
done

cat >&2 <<'EOF'
find-python: livestrat needs Python 3.12 or 3.13 (NautilusTrader 1.222+ requires >= 3.12),
with the venv module, and none was found on PATH or under pyenv.
Install one, then run make again:
  Debian 13 / Ubuntu 24.04:  apt-get install python3 python3-venv        (3.13 / 3.12)
  Debian 12:                 pyenv install 3.13    (or build CPython 3.13 from source)
  any machine with pyenv:    pyenv install 3.13
or name it explicitly:       make run PYTHON=/path/to/python3.13
EOF
exit 1
