#!/usr/bin/env bash
# deps.sh - installs, with apt-get, whatever raftfs needs to build, run and
# test that this Debian machine is missing. Safe to run again: it installs
# nothing when everything is there.
set -euo pipefail

PACKAGES=(
    # build
    gcc make cmake ninja-build pkg-config libc6-dev libcrypt-dev
    libfuse3-dev liblmdb-dev libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev
    libsystemd-dev libssl-dev
    # run; openssl also makes the tests' certificates
    fuse3 openssl
    # test
    bats bats-assert bats-support attr util-linux procps diffutils findutils
    # tests/bats/ops.bats: the --metrics-addr endpoints
    curl
    # tests/chaos: the driver and checker, network namespaces, partitions
    python3 iproute2 nftables
    # tests/fuzz: clang's libFuzzer (in libclang-rt-14-dev)
    clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
