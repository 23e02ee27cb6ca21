#!/usr/bin/env bash
# Download CIFAR-10 (python version) into datasets/cifar-10-batches-py next to this script.
#
#   ./get_datasets.sh          (from any directory; safe to run again)
#
# The archive (about 163 MB) is downloaded into a temporary folder inside datasets/,
# its md5 is checked, its member list is checked (no absolute paths, no "..", no links,
# nothing outside cifar-10-batches-py/), it is extracted there, and only then is the
# folder moved into place in one rename. On any failure or Ctrl-C the temporary folder
# is removed, so datasets/ is left as it was.
#
# Environment:
#   CIFAR10_URL   where to download from (default: the dataset's home page). With curl,
#                 file:///path/to/cifar-10-python.tar.gz uses a copy you already have.
#   CIFAR10_MD5   its expected md5 (default: that of the official archive)
set -euo pipefail

url="${CIFAR10_URL:-http://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz}"
md5="${CIFAR10_MD5:-c58f30108f718f92721af3b95e74349a}"
folder="cifar-10-batches-py"
files="data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch batches.meta"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
datasets="$here/datasets"
target="$datasets/$folder"

fail() {
    # fail WHAT [WHAT TO DO...]: print an error and its remedies, exit 1
    printf 'get_datasets.sh: error: %s\n' "$1" >&2
    shift
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

missing_files() {
    local f
    for f in $files; do [[ -f "$1/$f" && ! -L "$1/$f" ]] || printf '%s ' "$f"; done
}

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum <"$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then # macOS
        md5 -q "$1"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import hashlib, sys; print(hashlib.md5(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
    else
        fail "no md5 tool found (md5sum, md5 or python3)" "Install coreutils and run ./get_datasets.sh again."
    fi
}

# ---- already there? -------------------------------------------------------------------
if [[ -d "$target" ]]; then
    missing="$(missing_files "$target")"
    if [[ -z "$missing" ]]; then
        echo "CIFAR-10 is already in datasets/$folder: nothing to download."
        exit 0
    fi
    fail "datasets/$folder exists but lacks: $missing" \
        "Remove it (rm -r datasets/$folder) and run ./get_datasets.sh again."
elif [[ -e "$target" || -L "$target" ]]; then
    fail "datasets/$folder exists and is not a folder" "Remove it and run ./get_datasets.sh again."
fi

# ---- a temporary folder, removed whatever happens ---------------------------------------
made_datasets=0
if [[ ! -d "$datasets" ]]; then
    mkdir "$datasets"
    made_datasets=1
fi
tmp=""
cleanup() {
    local status=$?
    if [[ -n "$tmp" ]]; then rm -rf -- "$tmp"; fi
    if ((status != 0 && made_datasets)); then rmdir -- "$datasets" 2>/dev/null || true; fi
    exit "$status"
}
trap cleanup EXIT
trap 'printf "\nget_datasets.sh: interrupted; nothing was changed in datasets/\n" >&2; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# the name matches datasets/*.tmp* in .gitignore
tmp="$(mktemp -d "$datasets/cifar-10.tmp.XXXXXX")"
archive="$tmp/cifar-10-python.tar.gz"

# ---- download -------------------------------------------------------------------------
echo "Downloading $url ..."
status=0
if command -v curl >/dev/null 2>&1; then
    tool=curl
    progress="--silent"
    if [[ -t 2 ]]; then progress="--progress-bar"; fi
    # --speed-limit/--speed-time: give up on a server that stalls (under 1 kB/s for a
    # minute) instead of hanging forever; wget's --timeout does the same.
    curl --fail --location --show-error "$progress" --connect-timeout 30 \
        --speed-limit 1024 --speed-time 60 --output "$archive" "$url" || status=$?
elif command -v wget >/dev/null 2>&1; then
    tool=wget
    progress="--no-verbose"
    if [[ -t 2 ]]; then progress="--progress=bar"; fi
    wget "$progress" --tries=1 --timeout=60 --output-document="$archive" "$url" || status=$?
else
    fail "neither curl nor wget is installed" "Install one of them and run ./get_datasets.sh again."
fi
if ((status != 0)); then
    advice="Are you offline, or behind a proxy? Check the connection and run ./get_datasets.sh
  again: it starts from scratch and leaves nothing behind when it fails."
    case "$tool:$status" in
    curl:6 | curl:7 | curl:28) why="no connection to the server" ;;
    curl:18 | curl:56) why="the transfer broke off before the end" ;;
    wget:4) why="network failure (no connection, or the transfer broke off)" ;;
    curl:22 | wget:8)
        why="the server answered with an error"
        advice="Check CIFAR10_URL (unset it for the default), or try again later."
        ;;
    *) why="$tool exit status $status" ;;
    esac
    fail "could not download $url: $why." \
        "$advice" \
        "Or set CIFAR10_URL to a mirror, or (with curl) to file:///path/to/cifar-10-python.tar.gz." \
        "Without CIFAR-10 the kit uses its bundled Fashion-MNIST (CS231N_DATASET=auto)."
fi

# ---- verify ---------------------------------------------------------------------------
actual="$(md5_of "$archive" | tr '[:upper:]' '[:lower:]')"
expected="$(printf '%s' "$md5" | tr '[:upper:]' '[:lower:]')"
if [[ "$actual" != "$expected" ]]; then
    fail "checksum mismatch: the file from $url has md5 $actual, expected $expected." \
        "The download is damaged, or the URL serves a different file. Nothing was extracted." \
        "Run ./get_datasets.sh again; if it keeps failing, check CIFAR10_URL and CIFAR10_MD5."
fi
echo "md5 OK ($actual)."

# ---- check the members, then extract --------------------------------------------------
bad_archive() {
    fail "refusing to extract the archive: $1" \
        "It is not the CIFAR-10 archive this script expects. Check CIFAR10_URL and CIFAR10_MD5."
}
names="$(tar -tzf "$archive")" || bad_archive "tar cannot list it (not a .tar.gz?)"
types="$(tar -tvzf "$archive" | cut -c1)" || bad_archive "tar cannot list it (not a .tar.gz?)"
while IFS= read -r name; do
    case "/$name/" in
    */../* | */./*) bad_archive "member '$name' has a '..' or '.' component" ;;
    esac
    case "$name" in
    "$folder" | "$folder/") ;;
    "$folder"/*/?*) bad_archive "member '$name' is nested deeper than $folder/" ;;
    "$folder"/?*) ;;
    *) bad_archive "member '$name' is outside $folder/" ;;
    esac
done <<<"$names"
while IFS= read -r type; do
    case "$type" in
    - | d) ;; # regular files and folders only: no links, devices or fifos
    *) bad_archive "it holds a link or special file (type '$type')" ;;
    esac
done <<<"$types"

mkdir "$tmp/x"
tar -xzf "$archive" -C "$tmp/x" --no-same-owner || bad_archive "tar failed to extract it"
missing="$(missing_files "$tmp/x/$folder")"
if [[ -n "$missing" ]]; then bad_archive "$folder/ lacks: $missing"; fi

# ---- move into place in one rename ----------------------------------------------------
if [[ -e "$target" ]]; then
    fail "datasets/$folder appeared while downloading (another run?)" "Nothing was changed."
fi
mv -- "$tmp/x/$folder" "$target"
echo "CIFAR-10 is ready in datasets/$folder."
