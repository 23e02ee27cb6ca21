#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image; the zip's
# contents are in /autograder/source. It installs Python and the kit's pinned packages
# into /opt/cs231n-grader (readable by the sandbox's user), then closes the source, which
# holds the solutions, to every user but root.
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV=/opt/cs231n-grader
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip util-linux
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$SOURCE/requirements.txt"
# Build matplotlib's font cache now, not once per submission.
MPLBACKEND=Agg "$VENV/bin/python" -c "import matplotlib.font_manager"
chmod -R go-rwx "$SOURCE"
