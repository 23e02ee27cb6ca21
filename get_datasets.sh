#!/usr/bin/env bash
# Download CIFAR-10 (python version) into datasets/cifar-10-batches-py next to this script.
#
#   ./get_datasets.sh          (from any directory; safe to run again, or twice at once)
#
# The archive (170,498,071 bytes) is downloaded into a temporary folder inside datasets/,
# with a size cap and a stall limit. Its md5 is checked. Its member list is checked
# against the files CIFAR-10 holds, with their sizes, before anything is extracted: no
# absolute paths, no "..", no links, no unknown or oversized members. It is extracted
# there with plain permissions, and only then is the folder moved into place in one
# rename. On any failure, Ctrl-C or kill, the temporary folder is removed and the
# download stopped, so datasets/ is left as it was; a later run removes what a run
# killed with SIGKILL left behind. A second run waits for the first (flock).
#
# Environment:
#   CIFAR10_URL            where to download from (default: the dataset's home page). With
#                          curl, file:///path/to/cifar-10-python.tar.gz uses a local copy.
#   CIFAR10_MD5            its expected md5 (default: that of the official archive)
#   CIFAR10_MAX_BYTES      the most the download may be (default: the official archive's
#                          size, or 200,000,000 when CIFAR10_MD5 names another file)
#   CIFAR10_STALL_SECONDS  give up when under 10 kB/s arrive for this long (default 60)
set -euo pipefail

official_md5="c58f30108f718f92721af3b95e74349a"
official_bytes=170498071
url="${CIFAR10_URL:-http://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz}"
md5="$(printf '%s' "${CIFAR10_MD5:-$official_md5}" | tr '[:upper:]' '[:lower:]')"
folder="cifar-10-batches-py"
files="data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch batches.meta"
# The official archive's members and their sizes in bytes, as two independent listings
# of an extracted copy show them (the SDS-2.2 course notes of lamastex/scalable-data-
# science, "ls -l" on DBFS; and an S3CIFAR10 docstring, "s3cmd ls", on GitHub). With the
# official md5 the sizes must match exactly; with another md5 they are caps.
official_size() {
    case "$1" in
    data_batch_1) echo 31035704 ;;
    data_batch_2) echo 31035320 ;;
    data_batch_3) echo 31035999 ;;
    data_batch_4) echo 31035696 ;;
    data_batch_5) echo 31035623 ;;
    test_batch) echo 31035526 ;;
    batches.meta) echo 158 ;;
    readme.html) echo 88 ;;
    *) return 1 ;;
    esac
}
size_cap() { # the largest a member may be when the md5 is not the official one
    case "$1" in
    batches.meta | readme.html) echo 4096 ;;
    *) echo 31035999 ;; # the largest official batch
    esac
}
# the whole uncompressed tar stream: 6 batches, 2 small files, headers and padding
stream_cap=$((6 * 31035999 + 2 * 4096 + 1048576))
min_rate=10240 # bytes per second, over the stall window

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/${BASH_SOURCE[0]##*/}"
datasets="$here/datasets"
target="$datasets/$folder"

fail() {
    # fail WHAT [WHAT TO DO...]: print an error and its remedies, exit 1
    printf 'get_datasets.sh: error: %s\n' "$1" >&2
    shift
    for line in "$@"; do if [[ -n "$line" ]]; then printf '  %s\n' "$line" >&2; fi; done
    exit 1
}

official=0
if [[ "$md5" == "$official_md5" ]]; then official=1; fi

positive_int() { # positive_int NAME VALUE MAX
    if ! [[ "$2" =~ ^[0-9]{1,10}$ ]] || ((10#$2 < 1 || 10#$2 > $3)); then
        fail "$1=$2 is not a whole number from 1 to $3" "Unset it for the default."
    fi
}
if ((official)); then max_bytes="${CIFAR10_MAX_BYTES:-$official_bytes}"; else
    max_bytes="${CIFAR10_MAX_BYTES:-200000000}"
fi
positive_int CIFAR10_MAX_BYTES "$max_bytes" 1000000000
max_bytes=$((10#$max_bytes))
stall_seconds="${CIFAR10_STALL_SECONDS:-60}"
positive_int CIFAR10_STALL_SECONDS "$stall_seconds" 3600
stall_seconds=$((10#$stall_seconds))
[[ "$md5" =~ ^[0-9a-f]{32}$ ]] || fail "CIFAR10_MD5=$md5 is not an md5 (32 hex digits)" \
    "Unset it for the official archive's md5."

size_of() { # bytes in a regular file (0 if it does not exist)
    if [[ -f "$1" ]]; then
        local n
        n="$(wc -c <"$1")"
        echo $((n))
    else
        echo 0
    fi
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

# folder_problem DIR: print what keeps DIR from being a usable CIFAR-10 folder, if anything
folder_problem() {
    local f path size missing=""
    for f in $files; do [[ -f "$1/$f" && ! -L "$1/$f" ]] || missing+="$f "; done
    if [[ -n "$missing" ]]; then
        echo "lacks: ${missing% }"
        return
    fi
    for f in $files; do
        path="$1/$f"
        if [[ ! -r "$path" ]]; then
            echo "$f cannot be read"
            return
        fi
        size="$(size_of "$path")"
        if ((size == 0)); then
            echo "$f is empty"
            return
        fi
        if ((official)) && ((size != $(official_size "$f"))); then
            echo "$f is $size bytes where CIFAR-10's is $(official_size "$f") (damaged, or not CIFAR-10)"
            return
        fi
        # every pickle ends with the STOP opcode '.': anything else was cut short
        if [[ "$(tail -c 1 "$path")" != "." ]]; then
            echo "$f is cut short (it does not end as a pickle does)"
            return
        fi
    done
}

pid_alive() { # a zombie (killed, not yet reaped) counts as gone
    if [[ -d /proc/self ]]; then
        local stat
        read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
        stat="${stat##*) }"
        [[ "${stat%% *}" != Z ]]
    elif command -v ps >/dev/null 2>&1; then
        ps -p "$1" >/dev/null 2>&1
    else
        kill -0 "$1" 2>/dev/null
    fi
}

# ---- one run at a time ----------------------------------------------------------------
# The lock is on this script's own file, so it leaves nothing behind in datasets/, and
# the kernel releases it when the run ends, however it ends.
if command -v flock >/dev/null 2>&1; then
    exec 9<"$self"
    if ! flock -n 9; then
        echo "Another ./get_datasets.sh is running in $here; waiting for it to finish (at most 15 minutes; Ctrl-C to stop waiting) ..."
        flock -w 900 9 || fail "another ./get_datasets.sh in $here is still running after 15 minutes" \
            "Let it finish (or stop it), then run ./get_datasets.sh again."
    fi
fi

# ---- already there? -------------------------------------------------------------------
if [[ -L "$target" ]]; then
    fail "datasets/$folder is a symbolic link" \
        "Point CIFAR10_DIR at the real folder instead, remove the link, and run ./get_datasets.sh again."
elif [[ -d "$target" ]]; then
    problem="$(folder_problem "$target")"
    if [[ -z "$problem" ]]; then
        echo "CIFAR-10 is already in datasets/$folder: nothing to download."
        exit 0
    fi
    fail "datasets/$folder exists, but $problem" \
        "Remove it (rm -r datasets/$folder) and run ./get_datasets.sh again."
elif [[ -e "$target" ]]; then
    fail "datasets/$folder exists and is not a folder" "Remove it and run ./get_datasets.sh again."
fi

# ---- a temporary folder, removed whatever happens ---------------------------------------
made_datasets=0
tmp=""
child=""
placed=0
stop_child() {
    if [[ -n "$child" ]]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
        child=""
    fi
}
cleanup() {
    local status=$?
    trap '' INT TERM HUP
    stop_child
    if [[ -n "$tmp" ]]; then
        chmod -R u+rwX -- "$tmp" 2>/dev/null || true
        rm -rf -- "$tmp"
    fi
    if ((status != 0 && made_datasets)); then rmdir -- "$datasets" 2>/dev/null || true; fi
    exit "$status"
}
on_signal() { # on_signal NAME STATUS
    trap '' INT TERM HUP
    stop_child
    if ((placed)); then
        printf '\nget_datasets.sh: %s, after CIFAR-10 was put in datasets/%s\n' "$1" "$folder" >&2
    else
        printf '\nget_datasets.sh: %s; nothing was changed in datasets/\n' "$1" >&2
    fi
    exit "$2"
}
trap cleanup EXIT
trap 'on_signal interrupted 130' INT
trap 'on_signal "stopped (SIGTERM)" 143' TERM
trap 'on_signal "stopped (SIGHUP)" 129' HUP
if [[ ! -d "$datasets" ]]; then
    if mkdir -- "$datasets" 2>/dev/null; then made_datasets=1; fi
    [[ -d "$datasets" ]] || fail "cannot create $datasets" \
        "Check that you may write in $here, and run ./get_datasets.sh again."
fi

# Leftovers of runs that were killed with SIGKILL: the name holds the owner's pid.
for old in "$datasets"/cifar-10.tmp.*; do
    [[ -d "$old" && ! -L "$old" ]] || continue
    pid="${old##*/cifar-10.tmp.}"
    pid="${pid%%.*}"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue # not one of ours
    if ! pid_alive "$pid"; then
        chmod -R u+rwX -- "$old" 2>/dev/null || true
        if rm -rf -- "$old" 2>/dev/null; then
            echo "Removed datasets/${old##*/}, left by an earlier run that was killed."
        fi
    fi
done

# the name matches datasets/*.tmp* in .gitignore; the pid marks whose it is
tmp="$(mktemp -d "$datasets/cifar-10.tmp.$$.XXXXXX")"
archive="$tmp/cifar-10-python.tar.gz"
log="$tmp/download.log"

# ---- download -------------------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
    tool=curl
    # --max-filesize refuses a too-long Content-Length at once; ulimit below stops a
    # response that has none. --speed-*: the stall limit, also watched below.
    download=(curl --fail --location --silent --show-error --proto-redir "=http,https"
        --connect-timeout 30 --max-filesize "$max_bytes"
        --speed-limit "$min_rate" --speed-time "$stall_seconds"
        --write-out '%{http_code} %{time_connect}' --output "$archive" "$url")
elif command -v wget >/dev/null 2>&1; then
    tool=wget
    # wget has no speed limit: the watch loop below ends a trickle
    download=(wget --no-verbose --tries=1 --dns-timeout=30 --connect-timeout=30
        --read-timeout=$((stall_seconds + 5)) --output-document="$archive" "$url")
else
    fail "neither curl nor wget is installed" "Install one of them and run ./get_datasets.sh again."
fi
# The downloader dies with this script, even with SIGKILL (Linux's parent-death signal).
pdeath=()
if command -v setpriv >/dev/null 2>&1 && setpriv --pdeathsig TERM -- "$BASH" -c : 2>/dev/null; then
    pdeath=(setpriv --pdeathsig TERM --)
fi
# ulimit -f caps what the downloader can write: bash counts 1024-byte blocks (512 in
# POSIX mode); the cap lies just above max_bytes, so "more than max_bytes" shows.
block=1024
if [[ -o posix ]]; then block=512; fi

echo "Downloading $url ..."
(
    ulimit -f $((max_bytes / block + 1))
    exec ${pdeath[@]+"${pdeath[@]}"} "${download[@]}"
) </dev/null >"$tmp/curl.out" 2>"$log" 9<&- &
child=$!

# Watch the download: a stall ends it, and a terminal shows its progress.
stalled=0
window_start=$SECONDS
window_size=0
tick=0.05 # short at first, so that a small download is not kept waiting
while kill -0 "$child" 2>/dev/null; do
    sleep "$tick"
    if ((SECONDS - window_start > 1)); then tick=0.2; fi
    size="$(size_of "$archive")"
    if [[ -t 2 ]]; then
        if ((official)); then
            printf '\r  %d of %d MB ' $((size / 1000000)) $((official_bytes / 1000000)) >&2
        else
            printf '\r  %d MB ' $((size / 1000000)) >&2
        fi
    fi
    if ((SECONDS - window_start >= stall_seconds)); then
        if ((size - window_size < min_rate * (SECONDS - window_start))); then
            stalled=1
            stop_child
            break
        fi
        window_start=$SECONDS
        window_size=$size
    fi
done
status=0
if [[ -n "$child" ]]; then wait "$child" || status=$?; fi
child=""
if [[ -t 2 ]]; then printf '\n' >&2; fi
size="$(size_of "$archive")"

if ((status != 0 || stalled)) || ((size > max_bytes)); then
    said="$(grep -v '^ *$' "$log" 2>/dev/null | tail -n 1 || true)"
    said="${said#"$tool": }"
    read -r http_code time_connect <"$tmp/curl.out" 2>/dev/null || true
    advice="Check your connection (offline, or behind a proxy?) and run ./get_datasets.sh
  again: it starts from scratch and leaves nothing behind when it fails."
    if ((size > max_bytes)) || [[ "$tool:$status" == curl:63 ]]; then
        why="the file is more than $max_bytes bytes, larger than the archive can be"
        advice="Check CIFAR10_URL (unset it for the default)."
        if ((!official)); then advice+=" For a bigger file, set CIFAR10_MAX_BYTES."; fi
    elif ((stalled)) || [[ "$tool:$status" == curl:28 && "${time_connect:-0}" != 0.000000 ]]; then
        why="the download stalled (under $((min_rate / 1024)) kB/s for $stall_seconds s, after $size bytes)"
        advice="The server or the connection is too slow now. Try again later, or from another network."
    else
        case "$tool:$status" in
        curl:6) why="the host name could not be resolved (DNS)" ;;
        curl:7) why="the server refused the connection, or cannot be reached" ;;
        curl:28) why="no connection within 30 s (timeout)" ;;
        curl:18 | curl:56 | curl:92) why="the transfer broke off before the end" ;;
        curl:22)
            why="the server answered with an error (HTTP ${http_code:-?})"
            advice="Check CIFAR10_URL (unset it for the default), or try again later."
            ;;
        curl:23 | wget:3)
            why="could not write the download into datasets/ (disk full?)"
            advice="Free some space (about 360 MB are needed) and run ./get_datasets.sh again."
            ;;
        curl:1 | curl:3)
            why="curl cannot use this URL"
            advice="Check CIFAR10_URL (unset it for the default)."
            ;;
        curl:37)
            why="the file named by the URL cannot be read"
            advice="Check CIFAR10_URL (unset it for the default)."
            ;;
        wget:4)
            case "$said" in
            *"resolve host"* | *"Name or service"*) why="the host name could not be resolved (DNS)" ;;
            *"refused"* | *"unreachable"*) why="the server refused the connection, or cannot be reached" ;;
            *"onnection timed out"*) why="no connection within 30 s (timeout)" ;;
            *) why="network failure (the transfer broke off)" ;;
            esac
            ;;
        wget:8)
            why="the server answered with an error"
            advice="Check CIFAR10_URL (unset it for the default), or try again later."
            ;;
        *) why="$tool exit status $status" ;;
        esac
    fi
    fail "could not download $url: $why." \
        "${said:+$tool said: $said}" \
        "$advice" \
        "Or set CIFAR10_URL to a mirror, or (with curl) to file:///path/to/cifar-10-python.tar.gz." \
        "Without CIFAR-10 the kit uses its bundled Fashion-MNIST (CS231N_DATASET=auto)."
fi

# ---- verify ---------------------------------------------------------------------------
actual="$(md5_of "$archive" | tr '[:upper:]' '[:lower:]')"
if [[ "$actual" != "$md5" ]]; then
    sizes="$size bytes"
    if ((official)); then sizes+="; the official archive is $official_bytes"; fi
    fail "checksum mismatch: the file from $url has md5 $actual, expected $md5 ($sizes)." \
        "The download is damaged, or the URL serves a different file. Nothing was extracted." \
        "Run ./get_datasets.sh again; if it keeps failing, check CIFAR10_URL and CIFAR10_MD5."
fi
echo "md5 OK ($actual)."

# ---- check the members, then extract --------------------------------------------------
bad_archive() {
    fail "refusing to extract the archive: $1" \
        "It is not the CIFAR-10 archive this script expects. Check CIFAR10_URL and CIFAR10_MD5."
}
# A bomb is refused before it is listed: count what it expands to, up to the cap.
expands_to="$(
    set +o pipefail
    gzip -dc <"$archive" 2>/dev/null | head -c $((stream_cap + 1)) | wc -c
)"
if ((expands_to > stream_cap)); then
    bad_archive "it expands to more than $stream_cap bytes (CIFAR-10 is about 186 MB)"
fi
gnu_tar=0
if tar --version 2>/dev/null | grep -q GNU; then gnu_tar=1; fi
tar_list() { LC_ALL=C tar --numeric-owner "$@" -zf "$archive" 2>/dev/null; }
names="$(tar_list -t)" || bad_archive "tar cannot list it (not a .tar.gz?)"
long="$(tar_list -tv)" || bad_archive "tar cannot list it (not a .tar.gz?)"
members="$(printf '%s\n' "$names" | wc -l)"
if ((members > 20)); then bad_archive "it has $members members; CIFAR-10 has 9"; fi
if ((members != $(printf '%s\n' "$long" | wc -l))); then
    bad_archive "tar lists its members inconsistently"
fi
seen=" "
total=0
while IFS= read -r name && IFS= read -r line <&3; do
    case "/$name/" in
    */../* | */./*) bad_archive "member '$name' has a '..' or '.' component" ;;
    esac
    case "$name" in
    "$folder" | "$folder/") base="" ;;
    "$folder"/*/?*) bad_archive "member '$name' is nested deeper than $folder/" ;;
    "$folder"/?*) base="${name#"$folder"/}" ;;
    *) bad_archive "member '$name' is outside $folder/" ;;
    esac
    if ((gnu_tar)); then # mode uid/gid size date time name
        read -r mode _ size _ <<<"$line"
    else # bsdtar (macOS): mode links uid gid size ...
        read -r mode _ _ _ size _ <<<"$line"
    fi
    case "$mode" in
    -* | d*) ;; # regular files and folders only: no links, devices or fifos
    *) bad_archive "it holds a link or special file ('$name', type '${mode:0:1}')" ;;
    esac
    [[ -z "$base" ]] && continue
    official_size "$base" >/dev/null || bad_archive "member '$name' is not a CIFAR-10 file"
    [[ "${mode:0:1}" == "-" ]] || bad_archive "member '$name' is not a regular file"
    case "$seen" in *" $base "*) bad_archive "member '$name' appears twice" ;; esac
    seen+="$base "
    [[ "$size" =~ ^[0-9]+$ ]] || bad_archive "member '$name' has no readable size"
    if ((official)); then cap="$(official_size "$base")"; else cap="$(size_cap "$base")"; fi
    if ((size > cap || (official && size != cap))); then
        bad_archive "member '$name' is $size bytes; CIFAR-10's is $(official_size "$base")"
    fi
    total=$((total + size))
done <<<"$names" 3<<<"$long"

mkdir "$tmp/x"
# Owner and mode bits from the archive are not kept: files 644, the folder 755, so no
# setuid file and no folder that cannot be entered or removed. (The temporary folder is
# private to this user until then: mktemp -d makes it 700.)
tar -xzf "$archive" -C "$tmp/x" --no-same-owner --no-same-permissions 2>"$tmp/tar.err" || {
    if grep -q "No space left" "$tmp/tar.err"; then
        fail "no space left to extract CIFAR-10 into datasets/ (it needs about 186 MB)" \
            "Free some space and run ./get_datasets.sh again."
    fi
    bad_archive "tar failed to extract it: $(tail -n 1 "$tmp/tar.err")"
}
if [[ -d "$tmp/x/$folder" ]]; then
    chmod 0755 "$tmp/x/$folder"
    find "$tmp/x/$folder" -type f -exec chmod 0644 {} +
fi
problem="$(folder_problem "$tmp/x/$folder")"
if [[ -n "$problem" ]]; then bad_archive "$folder/ $problem"; fi
extracted=0
for f in "$tmp/x/$folder"/*; do extracted=$((extracted + $(size_of "$f"))); done
if ((extracted != total)); then
    bad_archive "it extracted to $extracted bytes, but its listing said $total"
fi

# ---- move into place in one rename ----------------------------------------------------
if [[ -e "$target" || -L "$target" ]]; then # only without flock can another run get here
    fail "datasets/$folder appeared while downloading (another run?)" "Nothing was changed."
fi
if mv --version 2>/dev/null | grep -q GNU; then
    # -T: never into a folder that appeared just now (GNU only; flock makes it moot)
    mv -T -- "$tmp/x/$folder" "$target" 2>/dev/null ||
        fail "datasets/$folder appeared while downloading (another run?)" "Nothing was changed."
else
    mv -- "$tmp/x/$folder" "$target"
fi
placed=1
echo "CIFAR-10 is ready in datasets/$folder."
