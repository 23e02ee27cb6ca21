#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image; the zip's
# contents are in /autograder/source. It installs Python and the kit's pinned packages.
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip util-linux
python3 -m venv "$SOURCE/.venv"
"$SOURCE/.venv/bin/python" -m pip install --quiet --upgrade pip
"$SOURCE/.venv/bin/python" -m pip install --quiet -r "$SOURCE/requirements.txt"
# Build matplotlib's font cache now, not once per submission.
MPLBACKEND=Agg "$SOURCE/.venv/bin/python" -c "import matplotlib.font_manager"
