#!/usr/bin/env bash
# `npm run bench`: the benchmark suite, side by side with PyTorch, written to BENCHMARKS.md.
#
#   npm run bench                         # the full suite (28-38 minutes on 2 cores)
#   npm run bench -- -m realesr-general-x4v3 --size 320x180 --runs 9   # any `esrvid bench` option
#
# Steps: (a) make sure the PyTorch reference can run: Debian's python3-torch in
# the system Python (/usr/bin/python3; a pyenv or venv python3 on PATH does not see them), installed
# with apt-get when missing; (b) make sure a C compiler exists for the FMA peak kernel; (c) build;
# (d) run `esrvid bench --write BENCHMARKS.md` with any extra arguments.
# The reference is only for this benchmark: esrvid and its tests never need Python.
# Without root or apt (or with ESRVID_BENCH_NO_INSTALL=1) nothing is installed and the suite runs
# without what is missing, saying so in the report.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${ESRVID_BENCH_PYTHON:-/usr/bin/python3}"

apt_install() {
  if [[ "${ESRVID_BENCH_NO_INSTALL:-0}" == 1 ]]; then
    echo "bench: not installing $* (ESRVID_BENCH_NO_INSTALL=1)" >&2
    return 1
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then sudo=(sudo); else
      echo "bench: need root to install $*; continuing without" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "bench: no apt-get to install $*; continuing without" >&2
    return 1
  fi
  echo "bench: installing $* with apt-get (once; python3-torch is large)" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  if [[ "$PYTHON" == /usr/bin/python3 ]]; then
    apt_install python3-torch || true
  else
    echo "bench: $PYTHON cannot import torch; the PyTorch reference will be skipped" >&2
  fi
fi

if ! command -v "${CC:-cc}" >/dev/null; then
  apt_install gcc libc6-dev || true
fi

npm run --silent build
exec node dist/cli.js bench --python "$PYTHON" --write BENCHMARKS.md "$@"
