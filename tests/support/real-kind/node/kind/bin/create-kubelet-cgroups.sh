#!/bin/sh
# Makes the `kubelet` cgroup (kind's `cgroupRoot: /kubelet` for kubelet < 1.24 on
# cgroupfs) in every mounted cgroup v1 controller before kubelet starts; kubelet refuses
# to start when the cgroup root is missing from any of them. No bind mounts: kubelet
# 1.20 takes each controller's root from the last matching line of
# /proc/self/mountinfo, and a `<controller>/kubelet` mounted onto itself would become
# that root.
set -eu
[ ! -f /sys/fs/cgroup/cgroup.controllers ] || exit 0
for dir in /sys/fs/cgroup/*/; do
    dir="${dir%/}"
    [ ! -L "$dir" ] || continue
    mountpoint -q "$dir" || continue
    mkdir -p "$dir/kubelet"
    case "$(basename "$dir")" in
        *cpuset*)
            # A cpuset cgroup takes no task until its CPUs and memory nodes are set.
            for file in cpuset.cpus cpuset.mems; do
                [ -n "$(cat "$dir/kubelet/$file")" ] || cat "$dir/$file" >"$dir/kubelet/$file"
            done
            ;;
    esac
done
