#!/usr/bin/env bash
# Debian packages the tests and benchmarks start on loopback. Idempotent: installs only what is missing.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)        # actionlint checks run: scripts with it
command -v buildah >/dev/null 2>&1 || need+=(buildah)              # make images
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)      # make images: the Debian base image
command -v fuse-overlayfs >/dev/null 2>&1 || need+=(fuse-overlayfs)  # make images: overlay storage where the kernel refuses it
command -v ip >/dev/null 2>&1 || need+=(iproute2)                  # image tests: the network namespace probe
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)  # provisioner tests: a throwaway cluster
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)    # gateway tests: the shared rate limit
command -v promtool >/dev/null 2>&1 || need+=(prometheus)          # monitoring tests: promtool test rules
for extra in "$@"; do need+=("$extra"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
