#!/usr/bin/env bash
# Set up a fresh Debian machine for tdi, as root: Docker engine, Podman, debootstrap, a venv
# with tox. Safe to run again: it installs only what is missing and starts dockerd only
# when no daemon answers. Podman needs no daemon: tdi starts its API service per command.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
# For tdi's own tests: a real registry server, and htpasswd for its credentials.
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
# Podman (engine: podman): catatonit is its --init; netavark and aardvark-dns give a
# topology's hosts names on their network; uidmap, slirp4netns and fuse-overlayfs are
# what rootless Podman needs.
command -v podman >/dev/null || lean+=(podman catatonit netavark aardvark-dns uidmap slirp4netns fuse-overlayfs)
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

# Podman's default rlimits for a container (a million open files) exceed what this kind
# of machine allows, and runc refuses them ("error setting rlimit type 7: operation not
# permitted"). Podman's own processes run with at most kernel.pid_max processes. Every
# container, and every RUN of a build, gets the machine's own hard limits instead.
conf=/etc/containers/containers.conf.d/tdi.conf
nofile=$(ulimit -Hn) nproc=$(ulimit -Hu) pid_max=$(cat /proc/sys/kernel/pid_max)
[[ $nofile == unlimited ]] && nofile=1048576
if [[ $nproc == unlimited ]] || ((nproc > pid_max)); then nproc=$pid_max; fi
want="# Written by tdi's scripts/setup.sh: the machine's own hard limits.
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
if [[ "$(cat "$conf" 2>/dev/null)" != "$want" ]]; then
    echo "setup: writing $conf (Podman's default_ulimits)" >&2
    mkdir -p "$(dirname "$conf")"
    printf '%s\n' "$want" >"$conf"
fi

# tox-uv makes tox build its environments with uv: seconds instead of pip's half minute
# per environment (each holds Ansible's tens of thousands of files).
if [[ ! -x .venv/bin/tox ]] || ! .venv/bin/python -c "import tox_uv" 2>/dev/null; then
    echo "setup: creating .venv with tox and tox-uv" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check tox tox-uv
fi
echo "setup: ready" >&2
