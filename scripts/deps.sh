#!/usr/bin/env bash
# Makes sure the build dependencies are present: libyaml (headers + static
# library), Check and subunit (static), pkg-config. Installs the Debian
# packages when missing (needs root and a package registry); on a machine
# where nothing can be installed, unpacked .debs in .deps/ serve instead
# (scripts/deps.sh --unpack .deps prepares them on a machine with apt).
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(libyaml-dev check libsubunit-dev pkg-config)

if [[ "${1:-}" == "--unpack" ]]; then
    dest=${2:?usage: deps.sh --unpack DIR}
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download "${packages[@]:0:3}" >/dev/null)
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dest"; done
    rm -rf "$tmp"
    echo "deps: unpacked ${packages[*]:0:3} into $dest"
    exit 0
fi

have() {
    local root=$1
    [[ -f $root/usr/include/yaml.h && -f $root/usr/include/check.h &&
       -f $root/usr/lib/x86_64-linux-gnu/libyaml.a &&
       -f $root/usr/lib/x86_64-linux-gnu/libcheck.a &&
       -f $root/usr/lib/x86_64-linux-gnu/libsubunit.a ]]
}

if have "" || have .deps; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "deps: missing libyaml-dev, check or libsubunit-dev; install them (apt-get install ${packages[*]})" >&2
    exit 1
fi
echo "deps: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${packages[@]}" >/dev/null
have "" || { echo "deps: installation did not provide the headers and libraries" >&2; exit 1; }
