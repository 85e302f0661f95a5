#!/usr/bin/env bash
# Set up a fresh Debian machine for tdi, as root: Docker engine, debootstrap, a venv with tox.
# Safe to run again: it installs only what is missing and starts dockerd only when no
# daemon answers.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
# For tdi's own tests: a real registry server, and htpasswd for its credentials.
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
# vagrant, for `vagrant validate` of the Vagrantfile; without its recommends, which pull
# in libvirt and qemu.
lean=()
command -v vagrant >/dev/null || lean+=(vagrant)
# A real browser, headless, for the HTML report's test; without recommends too.
command -v chromium >/dev/null || lean+=(chromium fonts-dejavu-core)
if ((${#need[@]} + ${#lean[@]})); then
    echo "setup: installing ${need[*]} ${lean[*]}" >&2
    apt-get update -qq
    if ((${#need[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if ((${#lean[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${lean[@]}" >/dev/null
    fi
fi

if ! docker info >/dev/null 2>&1; then
    if [[ -n "${DOCKER_HOST:-}" ]]; then
        echo "setup: no Docker daemon answers at DOCKER_HOST=$DOCKER_HOST" >&2
        exit 1
    fi
    echo "setup: starting dockerd (log: /var/log/tdi-dockerd.log)" >&2
    nohup dockerd >/var/log/tdi-dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/tdi-dockerd.log" >&2; exit 1; }
fi

# tox-uv makes tox build its environments with uv: seconds instead of pip's half minute
# per environment (each holds Ansible's tens of thousands of files).
if [[ ! -x .venv/bin/tox ]] || ! .venv/bin/python -c "import tox_uv" 2>/dev/null; then
    echo "setup: creating .venv with tox and tox-uv" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check tox tox-uv
fi
echo "setup: ready" >&2
