#!/usr/bin/env bash
# Builds a local registry image for the tests, without any registry: the
# distribution registry from Debian's `docker-registry` package (2.8.2, the same
# upstream code as docker.io/library/registry:2) with its libc as a rootfs, through
# `docker import`. It listens on :5000 and stores under /var/lib/registry, as the
# upstream image does (distribution-library-image `config-example.yml`).
# Idempotent: an image built by this same script (same content hash) is kept.
set -euo pipefail

IMAGE="${DEVCLUSTER_TEST_REGISTRY_IMAGE:-devcluster-test/registry:2}"
script_hash="$(sha256sum "$0" | cut -d' ' -f1)"

current="$(docker image inspect --format '{{index .Config.Labels "dev.devcluster.test-image.script"}}' "$IMAGE" 2>/dev/null || true)"
if [ "$current" = "$script_hash" ]; then
    echo "test registry image $IMAGE is up to date"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
deb="$(ls /var/cache/apt/archives/docker-registry_*.deb 2>/dev/null | head -n 1 || true)"
if [ -z "$deb" ]; then
    (cd "$work" && apt-get download docker-registry >/dev/null 2>&1) || {
        apt-get update >/dev/null && (cd "$work" && apt-get download docker-registry >/dev/null)
    }
    deb="$(ls "$work"/docker-registry_*.deb | head -n 1)"
fi
dpkg-deb -x "$deb" "$work/deb"

rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc/docker/registry" "$rootfs/var/lib/registry" "$rootfs/tmp" \
    "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
chmod 1777 "$rootfs/tmp"
cp "$work/deb/usr/bin/docker-registry" "$rootfs/bin/registry"
# The binary is dynamically linked against glibc only: copy the loader and the
# libraries ldd names, at the paths it names.
for lib in $(ldd "$rootfs/bin/registry" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
cat >"$rootfs/etc/docker/registry/config.yml" <<'YAML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YAML
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

tar -C "$rootfs" -c . | docker import \
    --change 'EXPOSE 5000' \
    --change 'VOLUME ["/var/lib/registry"]' \
    --change 'ENTRYPOINT ["/bin/registry"]' \
    --change 'CMD ["serve", "/etc/docker/registry/config.yml"]' \
    --change "LABEL dev.devcluster.test-image.script=$script_hash" \
    - "$IMAGE" >/dev/null
echo "built test registry image $IMAGE"
