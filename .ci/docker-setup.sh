#!/usr/bin/env bash
# Installs what the tests' Docker environment (tests/docker_env.py) needs, from Debian's packages only:
#   docker.io       dockerd 20.10 + containerd + runc + the docker CLI (the fixtures start dockerd themselves)
#   docker-registry the distribution registry 2.8, run by the fixtures on 127.0.0.1 (no image to pull)
#   busybox-static  the static busybox the offline base image atmos-tasks/busybox:test is made of
#   debootstrap     builds the atmos-tasks/python:test rootfs from the Debian mirror apt already uses
#   iptables        a dependency of docker.io anyway (dockerd runs with --iptables=false), listed to be explicit
# Idempotent, non-interactive; starts no service (policy-rc.d or no systemd; the fixtures own the daemons).
set -euo pipefail

packages=(docker.io docker-registry busybox-static debootstrap iptables)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "docker-setup: all present (${packages[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "docker-setup: need root to install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: skips cgroupfs-mount, git, needrestart… that docker.io recommends but the tests don't use.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "docker-setup: installed ${missing[*]}"
