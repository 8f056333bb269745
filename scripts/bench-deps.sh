#!/usr/bin/env bash
# What bench/ needs beyond Python: wrk (the load generator of bench/gateway.py). Idempotent; root.
set -euo pipefail
if ! command -v wrk >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
