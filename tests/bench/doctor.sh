#!/usr/bin/env bash
# Wall time of `devcluster doctor --profile ingress` with Docker up and with Docker
# unreachable (DOCKER_HOST=tcp://127.0.0.1:1), on a release build.
#
#   tests/bench/doctor.sh            # builds the release binary if needed
#   RUNS=20 tests/bench/doctor.sh
#
# Uses hyperfine when installed, else a loop timed with `date +%s%N`. doctor exits 1
# when a check fails (kind missing, Docker down), which is expected here: only time
# is measured. A stand-in `kind` that prints a version keeps the kind check cheap and
# independent of the machine.
set -euo pipefail

cd "$(dirname "$0")/../.."
runs="${RUNS:-10}"
target="${CARGO_TARGET_DIR:-target}"
if [[ ! -x "$target/release/devcluster" || "${BUILD:-1}" == 1 ]]; then
  cargo build --release --quiet --bin devcluster
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A private copy: a shared CARGO_TARGET_DIR may be rebuilt from another checkout meanwhile.
bin="$work/devcluster"
cp "$target/release/devcluster" "$bin"
printf '#!/bin/sh\necho "kind v0.32.0 go1.24.0 linux/amd64"\n' >"$work/kind"
chmod +x "$work/kind"
export DEVCLUSTER_KIND="$work/kind"

up_cmd="$bin doctor --profile ingress -o json"
down_cmd="env DOCKER_HOST=tcp://127.0.0.1:1 $bin doctor --profile ingress -o json"

if ! docker info >/dev/null 2>&1; then
  echo "warning: Docker does not answer here; the 'Docker up' figure is not meaningful" >&2
fi

if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs "$runs" --ignore-failure --style basic \
    --command-name 'doctor --profile ingress (Docker up)' "$up_cmd >/dev/null" \
    --command-name 'doctor --profile ingress (DOCKER_HOST=tcp://127.0.0.1:1)' "$down_cmd >/dev/null"
  exit 0
fi

measure() {
  local label="$1" command="$2" total=0 min="" max=0
  bash -c "$command" >/dev/null 2>&1 || true # warm-up
  for _ in $(seq "$runs"); do
    local start end ms
    start=$(date +%s%N)
    bash -c "$command" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    ms=$(((end - start) / 1000000))
    total=$((total + ms))
    ((ms > max)) && max=$ms
    if [[ -z "$min" ]] || ((ms < min)); then min=$ms; fi
  done
  printf '%-55s mean %5d ms  min %5d ms  max %5d ms  (%d runs)\n' \
    "$label" $((total / runs)) "$min" "$max" "$runs"
}

measure 'doctor --profile ingress (Docker up)' "$up_cmd"
measure 'doctor --profile ingress (DOCKER_HOST=tcp://127.0.0.1:1)' "$down_cmd"
