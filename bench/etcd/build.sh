#!/usr/bin/env bash
# bench/etcd/build.sh OUTPUT - builds etcdbench (bench/etcd/etcdbench/, the
# etcd side of `raftfs bench`) into the file OUTPUT.
#
# Installs with apt-get what is missing of golang-go golang-etcd-server-dev
# etcd-server etcd-client (Debian 12: Go 1.19, etcd 3.4.23 and the Go
# sources of its client and their dependencies), then builds fully offline
# in GOPATH mode against those sources: nothing is fetched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: bench/etcd/build.sh OUTPUT" >&2
    exit 2
fi
out=$1
case $out in /*) ;; *) out=$PWD/$out ;; esac

packages=(golang-go golang-etcd-server-dev etcd-server etcd-client)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "etcd build: need root (or sudo) to install: ${missing[*]}" >&2
            exit 1
        }
        sudo=sudo
    fi
    echo "etcd build: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # the package lists may be missing or old: update once if needed
    if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

for src in go.etcd.io/etcd/clientv3 google.golang.org/grpc; do
    if [ ! -d "/usr/share/gocode/src/$src" ]; then
        echo "etcd build: /usr/share/gocode/src/$src is missing (golang-etcd-server-dev)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d /tmp/raftfs-etcdbuild.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"
# GOPATH mode: imports resolve in $tmp (empty) then in Debian's sources.
# Go's usual build cache makes rebuilds quick (a first build takes a
# minute or so); without a home directory, a throwaway one.
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ]; then
    export GOCACHE=$tmp/gocache
fi
(
    cd "$here/etcdbench"
    env GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="$tmp/gopath:/usr/share/gocode" \
        go build -o "$out" .
)
echo "etcd build: $out ok" >&2
