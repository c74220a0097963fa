#!/usr/bin/env bash
# Builds the release binary, then runs the soak test against it (loopback only, bounded).
# Usage: scripts/soak.sh [soak.py options], e.g. scripts/soak.sh --seconds 60 --clients 16
# See scripts/soak.py for what is checked and when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts its output (CARGO_TARGET_DIR, .cargo/config.toml, or target/), as cargo says.
target_dir() {
  cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}
target="$(target_dir)"
cargo build --release
exec python3 scripts/soak.py "$target/release/prefeval" "$@"
