#!/usr/bin/env bash
# Builds the local node image the integration tests and the kind emulator use,
# without any registry: Debian's busybox-static as a rootfs, through `docker import`.
# Idempotent: an image built by this same script (same content hash) is kept.
set -euo pipefail

IMAGE="${DEVCLUSTER_TEST_IMAGE:-devcluster-test/node:latest}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
script_hash="$(sha256sum "$0" | cut -d' ' -f1)"

current="$(docker image inspect --format '{{index .Config.Labels "dev.devcluster.test-image.script"}}' "$IMAGE" 2>/dev/null || true)"
if [ "$current" = "$script_hash" ]; then
    echo "test image $IMAGE is up to date"
    exit 0
fi

if [ ! -x "$BUSYBOX" ] || ! "$BUSYBOX" --list >/dev/null 2>&1; then
    echo "error: $BUSYBOX is missing; install Debian's busybox-static (apt-get install -y busybox-static)" >&2
    exit 1
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/var" "$rootfs/proc" \
    "$rootfs/sys" "$rootfs/dev" "$rootfs/lib/modules" "$rootfs/run"
# Probe pods run as a non-root user and write under /tmp (the echo backend's files).
chmod 1777 "$rootfs/tmp"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    --change "LABEL dev.devcluster.test-image.script=$script_hash" \
    - "$IMAGE" >/dev/null
echo "built test image $IMAGE"
