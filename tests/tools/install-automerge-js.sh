# The JavaScript automerge library (npm `@automerge/automerge`), for the test that
# loads a document `martctl export` wrote (tests/tests/export.rs). Sourced by tests/run.
automerge_js="$MART_TOOLS_DIR/automerge-js"
if [ ! -e "$automerge_js/node_modules/@automerge/automerge/package.json" ]; then
    echo "== installing @automerge/automerge (npm) under $automerge_js"
    mkdir -p "$automerge_js"
    npm install --prefix "$automerge_js" --silent --no-audit --no-fund "@automerge/automerge@3" >/dev/null
fi
