#!/bin/sh
# Download CIFAR-10 (python version) into datasets/cifar-10-batches-py next to this script.
#
#   ./get_datasets.sh          (from any directory; safe to run again, or twice at once)
#
# This runs `python -m cs231n.get_datasets` from this folder, with the first of $PYTHON,
# python3 and python that is Python 3.10 or newer; see cs231n/get_datasets.py for what it
# guarantees (md5, size caps, stall limit, members checked before extracting, nothing
# left behind on failure) and the CIFAR10_* variables it honours. Without a shell (on
# Windows), run `python -m cs231n.get_datasets` in this folder instead.
set -eu
case "$0" in
*/*) here="${0%/*}" ;;
*) here=. ;;
esac
here="$(cd -- "$here" && pwd)"
for python in "${PYTHON:-}" python3 python; do
    if [ -n "$python" ] && command -v "$python" >/dev/null 2>&1 &&
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
        cd -- "$here"
        PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m cs231n.get_datasets --prog ./get_datasets.sh "$@"
    fi
done
echo "get_datasets.sh: error: no Python 3.10 or newer found (tried ${PYTHON:+\$PYTHON, }python3 and python)" >&2
echo "  Install Python 3 (python.org, or your system's package), or set PYTHON to one." >&2
exit 1
