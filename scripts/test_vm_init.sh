#!/bin/busybox sh
# /init of the test VM's initramfs (scripts/test_vm.sh builds it with a static busybox and the
# modules it lists in /mods/order): mounts this machine's file system over 9p as the VM's root,
# with its own /proc, /sys, /dev, /tmp and /run, runs the job in it, writes the job's exit status
# beside the job and powers off.
B=/bin/busybox
$B mkdir -p /proc /sys /dev /host /keep
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
for m in $($B cat /mods/order); do $B insmod "/mods/$m" || echo "test-vm: cannot load $m"; done
# The checkout's path has no space in it (test_vm.sh refuses one).
job=$($B sed -n 's/.* mfc_vm\.job=\([^ ]*\).*/\1/p' /proc/cmdline)
dir=${job%/*}
if ! $B mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose host /host; then
  echo "test-vm: cannot mount this machine's file system over 9p"
  echo o >/proc/sysrq-trigger
  $B sleep 10
fi
# The checkout (the job's parent) may live under /tmp or /run: keep it through their tmpfs.
checkout=${dir%/*}
$B mount --bind "/host$checkout" /keep
$B umount /proc /sys
$B mount -t proc proc /host/proc
$B mount -t sysfs sys /host/sys
$B mount --move /dev /host/dev
$B mkdir -p /host/dev/pts && $B mount -t devpts devpts /host/dev/pts
$B mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null
$B mount -t tmpfs -o mode=1777 tmp /host/tmp
$B mount -t tmpfs -o mode=755 run /host/run
$B mkdir -p "/host$checkout"
$B mount --move /keep "/host$checkout"
# switch_root, not chroot: the 9p root becomes the mount namespace's own root, so a process that
# enters a mount namespace (nsenter -m, as the tests do) finds this machine's tools, not the
# initramfs. The job's output goes through a pipe, as under CI: the test runner writes its plain
# report, not a terminal's.
exec $B switch_root /host /bin/bash -c '
  set -o pipefail
  /bin/bash "$0" </dev/null 2>&1 | cat >/dev/console
  echo $? >"${0%/*}/rc"
  sync
  echo o >/proc/sysrq-trigger
  sleep 10' "$job"
