#!/usr/bin/env bash
# Installs what the tests' Docker environment (tests/docker_env.py) needs, from Debian's packages only:
#   docker.io       dockerd 20.10 + containerd + runc + the docker CLI (the fixtures start dockerd themselves)
#   docker-registry the distribution registry 2.8, run by the fixtures on 127.0.0.1 (no image to pull)
#   busybox-static  the static busybox the offline base image atmos-tasks/busybox:test is made of
#   debootstrap     builds the atmos-tasks/python:test rootfs from the Debian mirror apt already uses
#   iptables        a dependency of docker.io anyway (dockerd runs with --iptables=false), listed to be explicit
#   postgresql      initdb, pg_ctl, postgres, psql for Terraform's pg backend tests (tests/postgres_env.py
#                   starts its own throwaway cluster); only when no initdb is found, on PATH or in Debian's
#                   /usr/lib/postgresql/<version>/bin, so a PostgreSQL installed otherwise is used as it is
# Idempotent, non-interactive; starts no service (policy-rc.d or no systemd; the fixtures own the daemons).
set -euo pipefail

packages=(docker.io docker-registry busybox-static debootstrap iptables)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "docker-setup: all present (${packages[*]} postgresql)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "docker-setup: need root to install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# No package may start its daemon (postgresql's postinst starts the cluster it creates): the fixtures
# start their own. A policy-rc.d saying "no" for the install only, unless the machine has one already.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# --no-install-recommends: skips cgroupfs-mount, git, needrestart… that docker.io recommends but the tests don't use.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "docker-setup: installed ${missing[*]}"
