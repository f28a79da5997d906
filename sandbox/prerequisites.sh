#!/bin/sh
# Installs, on Debian or Ubuntu, what `bosun demo` needs and this machine lacks: python3 with
# its venv module, git, and bubblewrap with util-linux (the sandbox). It uses apt-get, as root
# or through sudo; where it cannot, it says what to install and leaves the rest to Bosun,
# which says what is missing in one line (`bosun doctor` lists everything).
set -eu

# Where Bosun looks for the sandbox's tools, whatever PATH says.
tool_path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
has() { PATH="$tool_path:$PATH" command -v "$1" >/dev/null 2>&1; }

missing=""
has python3 || missing="$missing python3"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"
has git || missing="$missing git"
has bwrap || missing="$missing bubblewrap"
{ has setpriv && has prlimit; } || missing="$missing util-linux"
[ -n "$missing" ] || exit 0

if [ "$(id -u)" = 0 ]; then
  as_root=""
elif command -v sudo >/dev/null 2>&1; then
  as_root="sudo"
else
  as_root="none"
fi
if [ "$as_root" = none ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "prerequisites: missing:$missing; installing them here needs apt-get, as root or with sudo" >&2
  case "$missing" in
    *python3*|*git*) exit 1 ;;
    *) exit 0 ;;  # bosun demo says what the sandbox lacks, and offers --sandbox process
  esac
fi

echo "prerequisites: installing$missing (apt-get)" >&2
# shellcheck disable=SC2086  # $as_root is empty or one word; $missing is a word list
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
