# Shared by the installers in tests/tools: sourced by tests/run, never run alone.

# `apt_install COMMAND PACKAGE...`: installs the Debian packages when COMMAND is not on
# PATH (refreshing the package lists once per run); fails loudly when it cannot.
apt_install() {
    local command=$1
    shift
    if command -v "$command" >/dev/null 2>&1; then
        return 0
    fi
    echo "== installing $* (for $command)"
    if [ -z "${MART_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive $(sudo_if_needed) apt-get update -qq
        export MART_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $(sudo_if_needed) apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    command -v "$command" >/dev/null 2>&1 || { echo "$command still missing after installing $*" >&2; return 1; }
}

# `sudo` when not root (a developer's machine), nothing when root (CI).
sudo_if_needed() {
    if [ "$(id -u)" -ne 0 ]; then echo sudo; fi
}
