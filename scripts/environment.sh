# Shared by scripts/test and scripts/demo (sourced): the virtualenv with Pequod and its
# development tools, and the pinned toolchain built from source (cached outside the repository).

step() { printf '\n==> %s  (+%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

python_environment() {
    local python=${PYTHON:-python3}
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "Python >= 3.11 is required (found: $("$python" --version 2>&1))" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
        .venv/bin/python -m pip install --quiet --upgrade pip
    fi
    # Reinstall only when the declared dependencies change.
    local stamp
    stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --editable '.[dev]'
        rm -f .venv/.installed-* && touch "$stamp"
    fi
}

toolchain() {
    if ! command -v go >/dev/null; then
        echo "Go is required to build the pinned toolchain from source, and was not found on PATH" >&2
        exit 1
    fi
    .venv/bin/pequod toolchain build
}

system_packages() {
    # The real servers the module delivery tests run on loopback: Debian's docker-registry (an
    # OCI registry), git (git daemon and git-http-backend) and openssh-server (sshd, for Git
    # over SSH with a key). A missing one fails those tests; it is never skipped.
    local wanted=() package binary
    for package in docker-registry:docker-registry git:git openssh-server:/usr/sbin/sshd; do
        binary=${package#*:}
        command -v "$binary" >/dev/null || wanted+=("${package%%:*}")
    done
    if [ ${#wanted[@]} = 0 ]; then
        return
    fi
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null; then
            echo "missing: ${wanted[*]}; install them with: apt-get install ${wanted[*]}" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null; }
    command -v docker-registry >/dev/null && command -v git >/dev/null && [ -x /usr/sbin/sshd ]
}
