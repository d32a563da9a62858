# Sourced by test.sh: the kernel tests on a real Linux kernel that can route multicast, when the
# running one cannot.
#
# mfc's tests prove behaviour on the kernel's own ipmr/ip6mr code (real tables, real packets), so
# they need CONFIG_IP_MROUTE, CONFIG_IPV6_MROUTE and both *_MULTIPLE_TABLES. Some machines boot a
# kernel built without them (MRT_INIT answers ENOPROTOOPT) and cannot load modules. There the
# kernel tests run in a virtual machine: Debian 12's own kernel (package linux-image-amd64, unpacked,
# never installed) under qemu-system-x86_64, software emulation where /dev/kvm is missing.
#
#   test_vm_needed          true when the running kernel lacks what the tests need (says what)
#   test_vm_prepare         installs qemu-system-x86, busybox-static, kmod and cpio if missing, and
#                           builds the kernel and initramfs once into $TEST_VM_CACHE
#   test_vm_run CMD...      runs CMD in the checkout inside the VM; its output is this script's
#                           output, its exit status the function's
#
# The VM sees this machine's whole file system through 9p (read-write: the tests write their
# results and caches where they would on the host), with its own /proc, /sys, /dev and fresh
# tmpfs on /tmp and /run; the checkout is mounted back over them if it lives there. The VM has no
# network device: the tests build their own namespaces inside it.
set -euo pipefail

TEST_VM_CACHE=${TEST_VM_CACHE:-/var/cache/mfc-test-vm}

test_vm_say() { printf 'test-vm: %s\n' "$*" >&2; }

# The running kernel's multicast routing, as the tests need it.
test_vm_missing() {
  local missing=()
  [ -e /proc/net/ip_mr_vif ] || missing+=(CONFIG_IP_MROUTE)
  [ -e /proc/net/ip6_mr_vif ] || missing+=(CONFIG_IPV6_MROUTE)
  if [ -r /proc/config.gz ]; then
    local opt
    for opt in CONFIG_IP_MROUTE_MULTIPLE_TABLES CONFIG_IPV6_MROUTE_MULTIPLE_TABLES; do
      # Not grep -q: its early exit would make zcat's SIGPIPE the pipeline's status (pipefail).
      zcat /proc/config.gz | grep -x "$opt=y" >/dev/null || missing+=("$opt")
    done
  fi
  local IFS=,
  printf "%s\n" "${missing[*]:-}" | sed "s/,/, /g"
}

test_vm_needed() {
  local missing
  missing=$(test_vm_missing)
  [ -n "$missing" ] || return 1
  test_vm_say "the running kernel ($(uname -r)) was built without $missing: the kernel tests run in a VM on Debian's kernel"
  return 0
}

# The modules the VM loads before it mounts the host: virtio PCI and 9p, and the tests' link types
# (veth, dummy, bridge), in dependency order. Nothing else can be loaded later: the host has no
# /lib/modules for Debian's kernel.
TEST_VM_MODULES=(virtio_pci 9pnet_virtio 9p veth dummy bridge)

# The versioned kernel package linux-image-amd64 depends on; nothing when apt has no lists.
test_vm_kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1 || true
}

test_vm_prepare() {
  local pkgs=() deb version dir tmp
  [ "$(uname -m)" = x86_64 ] || { test_vm_say "only x86_64 is supported (this is $(uname -m))"; return 1; }
  command -v qemu-system-x86_64 >/dev/null 2>&1 || pkgs+=(qemu-system-x86)
  # A static busybox: the initramfs holds nothing else (ldd fails on a static binary).
  [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || pkgs+=(busybox-static)
  command -v depmod >/dev/null 2>&1 || [ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || pkgs+=(kmod)
  command -v cpio >/dev/null 2>&1 || pkgs+=(cpio)
  if [ ${#pkgs[@]} -gt 0 ]; then setup_apt "${pkgs[@]}"; fi
  deb=$(test_vm_kernel_package)
  if [ -z "$deb" ]; then
    setup_say "apt-get update (package lists, for Debian's kernel)"
    apt-get -q -o DPkg::Lock::Timeout=120 update >/dev/null
    deb=$(test_vm_kernel_package)
  fi
  [ -n "$deb" ] || { test_vm_say "apt knows no linux-image-amd64"; return 1; }
  version=${deb#linux-image-}
  # A new init script or module list is a new initramfs.
  dir="$TEST_VM_CACHE/$version-$(cat "$(dirname "${BASH_SOURCE[0]}")/test_vm_init.sh" <(printf '%s\n' "${TEST_VM_MODULES[@]}") | sha256sum | cut -c1-12)"
  TEST_VM_KERNEL=$version
  if [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.gz" ]; then TEST_VM_DIR=$dir; return 0; fi
  test_vm_say "building the VM's kernel and initramfs from Debian's $deb into $dir"
  # ~400 MB unpacked, in one place: a failed build's leftovers go at the next one.
  tmp="$TEST_VM_CACHE/build.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # Readable by apt's _apt user, which downloads into it.
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get -q download "$deb" >&2 || true)
  ls "$tmp"/*.deb >/dev/null 2>&1 || { test_vm_say "cannot download $deb"; return 1; }
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  PATH="$PATH:/usr/sbin:/sbin" depmod -b "$tmp/root" "$version"
  mkdir -p "$tmp/initrd/bin" "$tmp/initrd/mods"
  cp /bin/busybox "$tmp/initrd/bin/busybox"
  local mod order=()
  while read -r _ mod _; do
    case " ${order[*]:-} " in *" $mod "*) ;; *) order+=("$mod") ;; esac
  done < <(for m in "${TEST_VM_MODULES[@]}"; do PATH="$PATH:/usr/sbin:/sbin" modprobe -d "$tmp/root" -S "$version" --show-depends "$m"; done)
  for mod in "${order[@]}"; do cp "$mod" "$tmp/initrd/mods/"; done
  printf '%s\n' "${order[@]##*/}" >"$tmp/initrd/mods/order"
  cp "$(dirname "${BASH_SOURCE[0]}")/test_vm_init.sh" "$tmp/initrd/init"
  chmod 755 "$tmp/initrd/init"
  mkdir -p "$dir"
  (cd "$tmp/initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initrd.gz.new"
  cp "$tmp/root/boot/vmlinuz-$version" "$dir/vmlinuz.new"
  mv "$dir/initrd.gz.new" "$dir/initrd.gz"
  mv "$dir/vmlinuz.new" "$dir/vmlinuz"
  rm -rf "$tmp"
  TEST_VM_DIR=$dir
}

# test_vm_run CMD...: CMD (a shell command line) in the checkout, inside the VM, as root.
test_vm_run() {
  local root job rc accel=tcg,thread=multi,tb-size=1024 cpu=qemu64 how="emulated (no /dev/kvm): several times slower" mem v
  root=$(pwd)
  # The kernel's command line carries the job's path, and a space would split it.
  case $root in *[[:space:]]*) test_vm_say "the checkout's path has a space in it ($root): the VM cannot be given it"; return 1 ;; esac
  job="$root/.vm"
  rm -rf "$job"
  mkdir -p "$job"
  {
    printf 'export PATH=%q HOME=%q CI=%q\n' "$PATH" "${HOME:-/root}" "${CI:-}"
    # The tests' own knobs (MFC_EXHAUSTIVE, MFC_FUZZ_SEED, ...).
    for v in $(compgen -e | grep '^MFC_' || true); do printf 'export %s=%q\n' "$v" "${!v}"; done
    printf 'cd %q\n' "$root"
    printf '%s\n' "$*"
  } >"$job/job.sh"
  # Emulated, qemu64 ran Node fastest of max, Haswell and qemu64 (node -e 0 348 ms vs 380-438).
  if [ -w /dev/kvm ]; then accel=kvm; cpu=host; how="with KVM"; fi
  # 8 GiB, or half of this machine's memory if that is less (qemu reserves all of it up front).
  mem=$(awk '/^MemTotal:/ { m = int($2 / 2048); print (m < 8192 ? m : 8192) }' /proc/meminfo)
  test_vm_say "booting Debian's kernel $TEST_VM_KERNEL with $(nproc) CPUs, $how"
  # A hung test would otherwise hold the VM until CI's own limit; this one says what happened.
  timeout --foreground "${TEST_VM_TIMEOUT_S:-4500}" qemu-system-x86_64 -M q35 -accel "$accel" -cpu "$cpu" -smp "$(nproc)" -m "$mem" \
    -kernel "$TEST_VM_DIR/vmlinuz" -initrd "$TEST_VM_DIR/initrd.gz" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1 mfc_vm.job=$job/job.sh" \
    -virtfs local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap \
    -nographic -no-reboot -nodefaults -serial stdio -monitor none </dev/null
  rc=$(cat "$job/rc" 2>/dev/null || echo "")
  [ -n "$rc" ] || { test_vm_say "the VM stopped without the job's exit status (timed out after ${TEST_VM_TIMEOUT_S:-4500} s, or see its console above)"; return 1; }
  rm -rf "$job"
  return "$rc"
}
