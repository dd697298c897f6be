#!/usr/bin/env bash
# Runs the command-line tests (doctor, preflight, up/down on the kind emulator) the
# way a new team member runs devcluster: as an ordinary user in the `docker` group,
# from a clone under /tmp. The test binaries are built by the calling user (cargo
# and the toolchain may live in a home the test user cannot read), then run as the
# test user with a home of its own.
#
#   bash tests/support/run-as-user.sh [GROUP...]   (default: doctor lifecycle emulator verify_nodes init run load registry)
#
# A GROUP is a module of the `it` test binary (tests/it/GROUP.rs: its tests run as
# `it GROUP::`) or a test binary of its own (tests/GROUP.rs: all of its tests run).
set -euo pipefail

user="${DEVCLUSTER_TEST_USER:-devcluster-user}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(doctor lifecycle emulator verify_nodes init run load registry)
top="$(cd "$(dirname "$0")/../.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run this as root: it creates the user $user and runs the tests as that user" >&2
    exit 1
fi
if ! getent group docker >/dev/null; then
    echo "error: there is no docker group; install Docker (apt-get install docker.io)" >&2
    exit 1
fi
if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --groups docker "$user"
fi
usermod -aG docker "$user"
home="$(getent passwd "$user" | cut -d: -f6)"

# A clone under /tmp, so tests must pass wherever the checkout lives.
clone="$(mktemp -d /tmp/devcluster-clone.XXXXXX)"
trap 'rm -rf "$clone"' EXIT
git clone --quiet --no-hardlinks "$top" "$clone/src"
# The working tree's uncommitted state is what is being tested.
(cd "$top" && git ls-files -z --modified --others --exclude-standard) |
    (cd "$top" && xargs -0 -r cp --parents -t "$clone/src" 2>/dev/null || true)

# Modules of tests/it/ become name filters of the `it` binary; other test binaries
# run whole.
it_filters=()
build_args=()
for target in "${targets[@]}"; do
    if [ -f "$top/tests/it/$target.rs" ]; then
        it_filters+=("$target::")
    elif [ -f "$top/tests/$target.rs" ]; then
        build_args+=(--test "$target")
    else
        echo "error: no test group $target: neither tests/it/$target.rs nor tests/$target.rs exists" >&2
        exit 1
    fi
done
[ ${#it_filters[@]} -eq 0 ] || build_args+=(--test it)
# Build the test binaries and the emulator as the calling user, in the clone.
target_dir="$clone/target"
(
    cd "$clone/src"
    cargo build --quiet --target-dir "$target_dir" --bin devcluster --example kind-emulator
    cargo test --quiet --target-dir "$target_dir" --no-run --message-format=json "${build_args[@]}" \
        >"$clone/build.json"
)
# Test harnesses only (artefacts of targets of kind `test`), not the `devcluster`
# binary they run: its target is testable too, so `"test":true` alone matches it.
# Each line becomes `TARGET_NAME EXECUTABLE`.
mapfile -t binaries < <(grep -F '"kind":["test"]' "$clone/build.json" |
    sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p' | sort -u)
if [ ${#binaries[@]} -eq 0 ]; then
    echo "error: no test binary was built" >&2
    exit 1
fi
chown -R "$user" "$clone"

status=0
for built in "${binaries[@]}"; do
    name="${built%% *}"
    binary="${built#* }"
    filters=()
    [ "$name" != it ] || filters=("${it_filters[@]}")
    echo "---- $name${filters[*]:+ ${filters[*]}} as $user (uid $(id -u "$user"), groups: $(id -Gn "$user"))"
    # Drop every variable that points into the calling user's home.
    if ! (cd "$clone/src" && runuser -u "$user" -- env -i \
        PATH=/usr/local/bin:/usr/bin:/bin \
        HOME="$home" USER="$user" LOGNAME="$user" \
        TMPDIR=/tmp CI="${CI:-true}" \
        DEVCLUSTER_REQUIRE_DOCKER="${DEVCLUSTER_REQUIRE_DOCKER:-1}" \
        DEVCLUSTER_TEST_KIND_EMULATOR="$target_dir/debug/examples/kind-emulator" \
        ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} \
        "$binary" --test-threads 2 "${filters[@]}"); then
        status=1
    fi
done
exit "$status"
