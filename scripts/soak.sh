#!/usr/bin/env bash
# Builds the release binary, then runs the soak test against it (loopback only, bounded).
# Usage: scripts/soak.sh [soak.py options], e.g. scripts/soak.sh --seconds 60 --clients 16
# See scripts/soak.py for what is checked and when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
exec python3 scripts/soak.py target/release/prefeval "$@"
