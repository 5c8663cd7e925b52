#!/usr/bin/env bash
# Let the kernel run aarch64 programs through qemu-aarch64-static (binfmt_misc), so that a Python
# in the arm64 root can start others (pip, the tests' subprocesses, `harmonies` itself). Uses the
# registration Debian's qemu-user-static ships; does nothing when it is already registered.
set -euo pipefail
dir=/proc/sys/fs/binfmt_misc
if [ -e "$dir/qemu-aarch64" ]; then exit 0; fi
if [ ! -e "$dir/register" ]; then
  mount binfmt_misc -t binfmt_misc "$dir" 2>/dev/null || {
    echo "error: cannot mount binfmt_misc (needs root): aarch64 programs cannot start each other" >&2; exit 1; }
fi
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -r "$conf" ] || { echo "error: $conf missing: apt-get install qemu-user-static" >&2; exit 1; }
cat "$conf" > "$dir/register"
