#!/usr/bin/env bash
# Makes this machine ready for the end-to-end tests against clusters the real kind
# creates, from Debian's package registry alone:
#   - kind from Debian unstable (downloaded and unpacked; nothing else upgraded),
#   - an OCI runtime wrapper so privileged containers run on hosts whose capability
#     bounding set is smaller than Docker's full set,
#   - Kubernetes v1.20.2 built from Debian 12's `kubernetes` source package,
#   - a kind node image built from a debootstrap'd Debian rootfs, with every image
#     kubeadm needs preloaded (test-only stand-ins for CoreDNS, the CNI and storage).
#
# Run it once as root; later runs reuse the cache (${DEVCLUSTER_E2E_CACHE}, default
# /var/cache/devcluster-e2e) and rebuild an artefact only when its inputs change (the
# script's own stage code, the files under tests/support/real-kind/, package versions).
# It prints `stage NAME: N s` for every stage and writes `$CACHE/env`, a file of
# `export` lines (DEVCLUSTER_KIND, DEVCLUSTER_E2E_NODE_IMAGE, PATH) to source.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
FILES="$HERE/real-kind"
CACHE="${DEVCLUSTER_E2E_CACHE:-/var/cache/devcluster-e2e}"
K8S_VERSION=v1.20.2
NODE_REPO=devcluster-e2e/node
NODE_IMAGE="$NODE_REPO:$K8S_VERSION"
TEST_IMAGE="${DEVCLUSTER_TEST_IMAGE:-devcluster-test/node:latest}"
# The images in the node that are stand-ins (never shipped) carry this label.
STANDIN_LABEL=dev.devcluster.e2e.stand-in
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$CACHE"
LOGS="$CACHE/logs"
mkdir -p "$LOGS"

log() { printf '[real-kind] %s\n' "$*"; }
die() {
    printf 'error: %s\n' "$1" >&2
    [ -z "${2:-}" ] || printf 'hint: %s\n' "$2" >&2
    exit 1
}

# `stage NAME FUNCTION`: runs FUNCTION and prints how long it took.
stage() {
    local name="$1" start end
    shift
    start="$(date +%s)"
    "$@"
    end="$(date +%s)"
    printf 'stage %s: %d s\n' "$name" "$((end - start))"
    echo "$name $((end - start))" >>"$CACHE/timings"
}

# The hash of the code of these shell functions and of these files or directories:
# a stage's artefact is rebuilt when it changes.
key_of() {
    {
        local item
        for item in "$@"; do
            if [[ "$item" =~ ^[a-z_]+$ ]] && declare -F "$item" >/dev/null; then
                declare -f "$item"
            elif [ -d "$item" ]; then
                (cd "$item" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
            elif [ -f "$item" ]; then
                sha256sum <"$item"
            else
                printf '%s\n' "$item"
            fi
        done
    } | sha256sum | cut -c1-16
}

[ "$(id -u)" = 0 ] || die "this script installs packages and configures dockerd, so it runs as root" "run it with sudo"

# The Debian mirror this machine already uses (from its apt sources), so no host is
# named here.
debian_mirror() {
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)"
    fi
    [ -n "$uri" ] || die "cannot find the Debian mirror in /etc/apt/sources.list(.d)" "add a Debian 12 source to apt"
    printf '%s\n' "$uri"
}

# apt with its own sources list and lists directory: what it sees there changes
# nothing about the machine's own apt state.
private_apt() {
    local tool=apt-get dir="$1"
    shift
    if [ "$1" = policy ] || [ "$1" = showsrc ]; then tool=apt-cache; fi
    "$tool" -q -o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$dir/lists" -o Dir::Cache::archives="$dir/archives" \
        -o APT::Get::List-Cleanup=0 "$@"
}

private_apt_dir() {
    local dir="$1" line="$2"
    mkdir -p "$dir/lists/partial" "$dir/archives/partial"
    printf '%s\n' "$line" >"$dir/sources.list"
    # _apt cannot write into a root-only cache; apt then warns and downloads as root.
    chmod 755 "$dir" "$dir/lists" "$dir/archives"
    private_apt "$dir" update >"$LOGS/apt-$(basename "$dir").log" 2>&1 ||
        die "apt-get update for $dir failed (log: $LOGS/apt-$(basename "$dir").log)"
}

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# ---- stage: host packages --------------------------------------------------------
HOST_PACKAGES=(golang-go rsync debootstrap jq golang-github-modern-go-reflect2-dev
    busybox-static dpkg-dev gcc libc6-dev ca-certificates)
stage_host_packages() {
    local missing=() p
    for p in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -q >"$LOGS/apt-update.log" 2>&1 || die "apt-get update failed (log: $LOGS/apt-update.log)"
        apt-get install -y -q --no-install-recommends "${missing[@]}" >"$LOGS/apt-install.log" 2>&1 ||
            die "apt-get install ${missing[*]} failed (log: $LOGS/apt-install.log)"
    fi
}

pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

# ---- stage: kind -----------------------------------------------------------------
# Debian's `kind` package from unstable, unpacked into the cache with `dpkg -x`:
# nothing on the machine is installed or upgraded from unstable.
stage_kind() {
    local apt="$CACHE/apt-unstable"
    private_apt_dir "$apt" "deb [signed-by=$KEYRING] $(debian_mirror) unstable main"
    local version
    version="$(private_apt "$apt" policy kind 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [ -n "$version" ] && [ "$version" != "(none)" ] || die "Debian unstable has no kind package"
    local dest="$CACHE/kind/$version"
    if [ ! -x "$dest/usr/bin/kind" ]; then
        rm -rf "$dest" "$CACHE/kind/deb"
        mkdir -p "$CACHE/kind/deb" "$dest"
        (cd "$CACHE/kind/deb" && private_apt "$apt" download "kind=$version" >"$LOGS/kind-download.log" 2>&1) ||
            die "apt-get download kind failed (log: $LOGS/kind-download.log)"
        dpkg -x "$CACHE"/kind/deb/kind_*.deb "$dest"
    fi
    KIND="$dest/usr/bin/kind"
    "$KIND" version >/dev/null || die "$KIND does not run"
    log "kind: $KIND ($("$KIND" version))"
}

# ---- stage: OCI runtime wrapper ----------------------------------------------------
# Registered as dockerd's default runtime. Nothing else in the daemon changes.
RUNTIME_NAME=devcluster-capfilter
RUNTIME_PATH=/usr/local/sbin/devcluster-capfilter-runc
stage_runtime() {
    install -m 0755 "$FILES/capfilter-runc" "$RUNTIME_PATH"
    local conf=/etc/docker/daemon.json current merged
    mkdir -p /etc/docker
    current="{}"
    [ -s "$conf" ] && current="$(cat "$conf")"
    merged="$(jq --arg name "$RUNTIME_NAME" --arg path "$RUNTIME_PATH" \
        '.runtimes[$name] = {path: $path} | ."default-runtime" = $name' <<<"$current")" ||
        die "$conf is not JSON" "fix or remove it, then run this again"
    if [ "$merged" != "$(jq . <<<"$current")" ]; then
        log "registering $RUNTIME_NAME as dockerd's default runtime in $conf"
        printf '%s\n' "$merged" >"$conf.tmp" && mv "$conf.tmp" "$conf"
    fi
    if [ "$(docker info --format '{{.DefaultRuntime}}')" != "$RUNTIME_NAME" ]; then
        # dockerd reloads `runtimes` and `default-runtime` on SIGHUP.
        local pid
        pid="$(pidof dockerd)" || die "dockerd is not running" "start dockerd, then run this again"
        kill -HUP "$pid"
        local _
        for _ in $(seq 1 20); do
            [ "$(docker info --format '{{.DefaultRuntime}}')" = "$RUNTIME_NAME" ] && break
            sleep 0.5
        done
    fi
    [ "$(docker info --format '{{.DefaultRuntime}}')" = "$RUNTIME_NAME" ] ||
        die "dockerd did not take $RUNTIME_NAME as its default runtime" "see dockerd's log"
    bash "$HERE/build-test-image.sh"
    docker run --rm --privileged "$TEST_IMAGE" true ||
        die "a privileged container does not start even through $RUNTIME_PATH"
}

# ---- stage: Kubernetes -------------------------------------------------------------
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl)

k8s_source() {
    local apt="$CACHE/apt-bookworm-src"
    private_apt_dir "$apt" "deb-src [signed-by=$KEYRING] $(debian_mirror) bookworm main"
    K8S_SRC_VERSION="$(private_apt "$apt" showsrc kubernetes 2>/dev/null | awk '/^Version:/ {print $2; exit}')"
    [ -n "$K8S_SRC_VERSION" ] || die "Debian 12 has no kubernetes source package"
}

build_kubernetes() {
    local out="$1" work="$CACHE/k8s-work"
    rm -rf "$work"
    mkdir -p "$work"
    chmod 755 "$work"
    (cd "$work" && private_apt "$CACHE/apt-bookworm-src" source --download-only "kubernetes=$K8S_SRC_VERSION") \
        >"$LOGS/k8s-source.log" 2>&1 || die "apt-get source kubernetes failed (log: $LOGS/k8s-source.log)"
    dpkg-source --no-check -x "$work"/kubernetes_*.dsc "$work/src" >>"$LOGS/k8s-source.log" 2>&1
    local src="$work/src"
    # The vendored reflect2 v1.0.1 breaks under Go 1.18+ (kubeadm init panics in
    # reflect2 Type2); Debian's 1.0.2 works.
    rm -rf "$src/vendor/github.com/modern-go/reflect2"
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
    sed -i 's|github.com/modern-go/reflect2 v1.0.1|github.com/modern-go/reflect2 v1.0.2|g' "$src/go.mod" "$src/vendor/modules.txt"
    # The GOPATH layout Debian's debian/rules makes.
    mkdir -p "$src/.go/src/k8s.io"
    ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
    local what=() b
    for b in "${K8S_BINARIES[@]}"; do what+=("cmd/$b"); done
    (
        cd "$src"
        export GOPATH="$src/.go" CGO_ENABLED=0 HOME="$CACHE/home" GOCACHE="$CACHE/go-build"
        export PATH="/usr/lib/go/bin:$PATH"
        mkdir -p "$HOME"
        make WHAT="${what[*]}"
    ) >"$LOGS/k8s-build.log" 2>&1 || die "building Kubernetes failed (log: $LOGS/k8s-build.log)"
    mkdir -p "$out.tmp"
    for b in "${K8S_BINARIES[@]}"; do cp "$src/_output/bin/$b" "$out.tmp/"; done
    mv "$out.tmp" "$out"
    rm -rf "$work"
}

stage_kubernetes() {
    k8s_source
    local key
    key="$(key_of build_kubernetes "$K8S_SRC_VERSION" "$(pkg_version golang-go)" "$(pkg_version golang-github-modern-go-reflect2-dev)")"
    K8S_BIN="$CACHE/kubernetes/$key"
    if [ ! -x "$K8S_BIN/kubeadm" ]; then
        rm -rf "$CACHE/kubernetes"
        log "building Kubernetes $K8S_VERSION from Debian's source $K8S_SRC_VERSION (log: $LOGS/k8s-build.log)"
        build_kubernetes "$K8S_BIN"
    fi
    "$K8S_BIN/kubeadm" version -o short | grep -qx "$K8S_VERSION" ||
        die "$K8S_BIN/kubeadm does not report $K8S_VERSION"
}

# ---- stage: rootfs -------------------------------------------------------------------
# A Debian 12 rootfs for the node: systemd as init, containerd, runc, the CNI plugins
# and what kubelet and kubeadm call.
NODE_PACKAGES=(systemd systemd-sysv dbus containerd runc containernetworking-plugins
    iptables conntrack socat ethtool mount util-linux kmod procps iproute2 bash
    ca-certificates findutils hostname)
# `package=version` of each package's candidate in this machine's Debian 12 lists.
package_versions() {
    apt-cache show --no-all-versions "$@" 2>/dev/null | awk '/^Package:/ {p = $2} /^Version:/ {print p "=" $2}'
}

make_rootfs() {
    local out="$1"
    rm -rf "$out" "$out.tmp"
    local packages
    packages="$(IFS=,; echo "${NODE_PACKAGES[*]}")"
    debootstrap --variant=minbase --include="$packages" bookworm "$out.tmp" "$(debian_mirror)" \
        >"$LOGS/debootstrap.log" 2>&1 || die "debootstrap failed (log: $LOGS/debootstrap.log)"
    rm -rf "$out.tmp"/var/cache/apt/archives/*.deb "$out.tmp"/var/lib/apt/lists/*
    mv "$out.tmp" "$out"
}

stage_rootfs() {
    local key
    key="$(key_of make_rootfs "${NODE_PACKAGES[*]}" "$(package_versions "${NODE_PACKAGES[@]}")")"
    ROOTFS="$CACHE/rootfs/$key"
    if [ ! -x "$ROOTFS/usr/bin/containerd" ]; then
        rm -rf "$CACHE/rootfs"
        mkdir -p "$CACHE/rootfs"
        log "debootstrap of the node rootfs (log: $LOGS/debootstrap.log)"
        make_rootfs "$ROOTFS"
    fi
}

# ---- stage: images -----------------------------------------------------------------
# `copy_from_rootfs DEST FILE...`: copies FILEs (paths inside $ROOTFS) and the shared
# libraries they load into DEST, so a small image runs Debian's dynamically linked
# binaries.
copy_from_rootfs() {
    local dest="$1" file lib
    shift
    for file in "$@"; do
        mkdir -p "$dest$(dirname "$file")"
        cp -a "$ROOTFS$file" "$dest$file"
        for lib in $(chroot "$ROOTFS" ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true); do
            [ -e "$dest$lib" ] && continue
            mkdir -p "$dest$(dirname "$lib")"
            cp -L "$ROOTFS$lib" "$dest$lib"
        done
    done
}

# `import_image NAME DIR [--change ...]`: a single-layer image of DIR.
import_image() {
    local name="$1" dir="$2"
    shift 2
    mkdir -p "$dir/tmp" "$dir/etc"
    chmod 1777 "$dir/tmp"
    tar -C "$dir" -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$@" - "$name" >/dev/null
}

add_busybox() {
    local dir="$1" applet
    mkdir -p "$dir/bin"
    cp /bin/busybox "$dir/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
    done
}

# The pause binary from Kubernetes' own source (build/pause/linux/pause.c).
build_pause() {
    local out="$1" work="$CACHE/pause-work"
    rm -rf "$work"
    mkdir -p "$work"
    chmod 755 "$work"
    (cd "$work" && private_apt "$CACHE/apt-bookworm-src" source --download-only "kubernetes=$K8S_SRC_VERSION") \
        >"$LOGS/pause.log" 2>&1 || die "apt-get source kubernetes failed (log: $LOGS/pause.log)"
    tar -C "$work" -xzf "$work"/kubernetes_*.orig.tar.gz --wildcards '*/build/pause/linux/pause.c'
    gcc -Os -Wall -Werror -static -DVERSION=v3.2-devcluster-e2e -o "$out" "$work"/*/build/pause/linux/pause.c \
        >>"$LOGS/pause.log" 2>&1 || die "compiling pause.c failed (log: $LOGS/pause.log)"
    rm -rf "$work"
}

# etcd from Debian's etcd-server package, unpacked (not installed).
fetch_etcd() {
    local out="$1" work="$CACHE/etcd-work"
    rm -rf "$work"
    mkdir -p "$work"
    chmod 755 "$work"
    (cd "$work" && apt-get download etcd-server >"$LOGS/etcd.log" 2>&1) || die "apt-get download etcd-server failed (log: $LOGS/etcd.log)"
    dpkg -x "$work"/etcd-server_*.deb "$work/x"
    cp "$work/x/usr/bin/etcd" "$out"
    rm -rf "$work"
}

build_images() {
    local tar="$1" work="$CACHE/images-work" names=() image base
    rm -rf "$work"
    mkdir -p "$work"
    for image in $("$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null); do
        base="${image##*/}"
        base="${base%%:*}"
        local dir="$work/$base"
        mkdir -p "$dir"
        case "$base" in
            kube-apiserver | kube-controller-manager | kube-scheduler)
                install -D -m 0755 "$K8S_BIN/$base" "$dir/usr/local/bin/$base"
                import_image "$image" "$dir"
                ;;
            kube-proxy)
                install -D -m 0755 "$K8S_BIN/kube-proxy" "$dir/usr/local/bin/kube-proxy"
                copy_from_rootfs "$dir" /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /usr/sbin/conntrack
                mkdir -p "$dir/usr/lib/x86_64-linux-gnu"
                cp -a "$ROOTFS/usr/lib/x86_64-linux-gnu/xtables" "$dir/usr/lib/x86_64-linux-gnu/"
                for lib in "$ROOTFS"/usr/lib/x86_64-linux-gnu/xtables/*.so; do
                    copy_from_rootfs "$dir" "${lib#"$ROOTFS"}"
                done
                add_busybox "$dir"
                install -m 0755 "$FILES/kube-proxy/iptables-mode" "$dir/usr/sbin/iptables-mode"
                local name
                for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
                    ln -sf iptables-mode "$dir/usr/sbin/$name"
                done
                import_image "$image" "$dir"
                ;;
            pause)
                install -D -m 0755 "$CACHE/bin/pause" "$dir/pause"
                import_image "$image" "$dir" --change 'ENTRYPOINT ["/pause"]'
                ;;
            etcd)
                install -D -m 0755 "$CACHE/bin/etcd" "$dir/usr/local/bin/etcd"
                mkdir -p "$ROOTFS/tmp/etcd-libs"
                cp "$CACHE/bin/etcd" "$ROOTFS/tmp/etcd-libs/etcd"
                copy_from_rootfs "$dir" /tmp/etcd-libs/etcd
                rm -rf "$ROOTFS/tmp/etcd-libs" "$dir/tmp/etcd-libs"
                import_image "$image" "$dir"
                ;;
            coredns)
                add_busybox "$dir"
                install -m 0755 "$FILES/standin/coredns" "$dir/coredns"
                mkdir -p "$dir/www"
                echo OK >"$dir/www/health"
                echo OK >"$dir/www/ready"
                import_image "$image" "$dir" --change 'ENTRYPOINT ["/coredns"]' \
                    --change "LABEL $STANDIN_LABEL=CoreDNS"
                ;;
            *) die "kubeadm names an image this script cannot make: $image" ;;
        esac
        names+=("$image")
    done
    [ "${#names[@]}" -ge 7 ] || die "kubeadm config images list named ${#names[@]} images"
    local dir="$work/cni-standin"
    add_busybox "$dir"
    install -D -m 0755 "$K8S_BIN/kubectl" "$dir/usr/local/bin/kubectl"
    install -m 0755 "$FILES/standin/cni-standin" "$dir/cni-standin"
    import_image "$CNI_IMAGE" "$dir" --change "LABEL $STANDIN_LABEL=kindnetd"
    names+=("$CNI_IMAGE" "$TEST_IMAGE")
    printf '%s\n' "${names[@]}" >"$work/names"
    docker save -o "$tar.tmp" "${names[@]}"
    mv "$tar.tmp" "$tar"
    for image in "${names[@]}"; do
        [ "$image" = "$TEST_IMAGE" ] || docker rmi "$image" >/dev/null
    done
    rm -rf "$work"
}

CNI_IMAGE=devcluster-e2e/cni-standin:v1
stage_images() {
    if [ ! -x "$CACHE/bin/pause" ] || [ "$(cat "$CACHE/bin/pause.key" 2>/dev/null)" != "$(key_of build_pause "$K8S_SRC_VERSION")" ]; then
        mkdir -p "$CACHE/bin"
        build_pause "$CACHE/bin/pause"
        key_of build_pause "$K8S_SRC_VERSION" >"$CACHE/bin/pause.key"
    fi
    local etcd_version
    etcd_version="$(package_versions etcd-server)"
    if [ ! -x "$CACHE/bin/etcd" ] || [ "$(cat "$CACHE/bin/etcd.key" 2>/dev/null)" != "$etcd_version" ]; then
        fetch_etcd "$CACHE/bin/etcd"
        echo "$etcd_version" >"$CACHE/bin/etcd.key"
    fi
    local key
    key="$(key_of build_images import_image copy_from_rootfs add_busybox "$FILES/standin" "$FILES/kube-proxy" "bin:$K8S_BIN" "rootfs:$ROOTFS" \
        "$(sha256sum "$CACHE/bin/pause" "$CACHE/bin/etcd")" \
        "$(docker image inspect --format '{{.Id}}' "$TEST_IMAGE")")"
    IMAGES_TAR="$CACHE/images/$key.tar"
    if [ ! -s "$IMAGES_TAR" ]; then
        rm -rf "$CACHE/images"
        mkdir -p "$CACHE/images"
        build_images "$IMAGES_TAR"
    fi
}

# ---- stage: node image -------------------------------------------------------------
build_node_image() {
    local key="$1" work="$CACHE/node-work"
    rm -rf "$work"
    mkdir -p "$work"
    local root="$work/rootfs"
    cp -a "$ROOTFS" "$root"
    cp -a "$FILES/node/." "$root/"
    local pause_image cni_image
    pause_image="$("$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null | grep '/pause:')"
    sed -i "s|@PAUSE_IMAGE@|$pause_image|" "$root/etc/containerd/config.toml"
    sed -i "s|@CNI_IMAGE@|$CNI_IMAGE|" "$root/kind/manifests/default-cni.yaml"
    local b
    for b in kubelet kubeadm kubectl; do
        install -m 0755 "$K8S_BIN/$b" "$root/usr/bin/$b"
    done
    echo "$K8S_VERSION" >"$root/kind/version"
    chroot "$root" systemctl set-default multi-user.target >/dev/null 2>&1
    chroot "$root" systemctl enable containerd.service kubelet.service >/dev/null 2>&1
    chroot "$root" systemctl mask systemd-udevd.service systemd-udevd-kernel.socket \
        systemd-udevd-control.socket systemd-modules-load.service sys-kernel-debug.mount \
        sys-kernel-tracing.mount getty@tty1.service console-getty.service e2scrub_reap.service >/dev/null 2>&1
    # Preload every image into containerd's k8s.io namespace with a throwaway
    # containerd on this host working on the rootfs' /var/lib/containerd (content and
    # metadata only; the node unpacks each image when it first runs it).
    local state="$work/containerd"
    mkdir -p "$state"
    cat >"$state/config.toml" <<TOML
version = 2
root = "$root/var/lib/containerd"
state = "$state/run"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$state/containerd.sock"
[ttrpc]
  address = "$state/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/opt"
TOML
    containerd --config "$state/config.toml" >"$LOGS/preload-containerd.log" 2>&1 &
    local pid=$! _
    for _ in $(seq 1 50); do
        [ -S "$state/containerd.sock" ] && break
        sleep 0.2
    done
    ctr --address "$state/containerd.sock" -n k8s.io images import --no-unpack "$IMAGES_TAR" \
        >"$LOGS/preload.log" 2>&1 || { kill "$pid"; die "ctr images import failed (log: $LOGS/preload.log)"; }
    ctr --address "$state/containerd.sock" -n k8s.io images ls -q >>"$LOGS/preload.log"
    kill "$pid"
    wait "$pid" || true
    tar -C "$root" --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -c . | docker import \
        --change 'ENV container=docker' \
        --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
        --change "LABEL dev.devcluster.e2e.node-image=$key" \
        --change "LABEL $STANDIN_LABEL=CoreDNS,kindnetd,local-path-provisioner" \
        - "$NODE_IMAGE" >/dev/null
    rm -rf "$work"
}

stage_node_image() {
    local key current
    key="$(key_of build_node_image "$FILES/node" "images:$IMAGES_TAR" "rootfs:$ROOTFS" "bin:$K8S_BIN")"
    current="$(docker image inspect --format '{{index .Config.Labels "dev.devcluster.e2e.node-image"}}' "$NODE_IMAGE" 2>/dev/null || true)"
    if [ "$current" != "$key" ]; then
        log "building $NODE_IMAGE"
        build_node_image "$key"
    fi
    log "node image: $NODE_IMAGE ($(docker image inspect --format '{{.Size}}' "$NODE_IMAGE" | awk '{printf "%d MB", $1 / 1e6}'))"
}

main() {
    rm -f "$CACHE/timings"
    local start
    start="$(date +%s)"
    stage host-packages stage_host_packages
    stage kind stage_kind
    stage runtime stage_runtime
    # The Kubernetes build is the long pole: it runs while the rootfs is made.
    stage kubernetes stage_kubernetes &
    local build=$!
    stage rootfs stage_rootfs
    wait "$build" || die "the Kubernetes build failed (log: $LOGS/k8s-build.log)"
    stage_kubernetes
    stage images stage_images
    stage node-image stage_node_image
    {
        echo "export DEVCLUSTER_KIND='$KIND'"
        echo "export DEVCLUSTER_E2E_NODE_IMAGE='$NODE_IMAGE'"
        echo "export PATH='$(dirname "$KIND"):'\"\$PATH\""
    } >"$CACHE/env"
    log "wrote $CACHE/env (source it before the end-to-end tests)"
    printf 'stage total: %d s\n' "$(($(date +%s) - start))"
}

[ "${BASH_SOURCE[0]}" != "$0" ] || main "$@"
