# Sourced by the scripts that run a release `ticketing`: `release_bin` sets BIN to the binary
# TICKETING_BIN names (another build, e.g. an older commit's for a before/after figure), or
# builds this checkout's release binary and sets BIN to it (under CARGO_TARGET_DIR when set).

release_bin() {
    if [ -n "${TICKETING_BIN:-}" ]; then
        BIN=$TICKETING_BIN
    else
        cargo build --release -q -p ticketing-cli
        BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ticketing
    fi
}
