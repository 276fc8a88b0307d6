#!/bin/sh
# The base image of the `web` deployment, made offline from Debian's static busybox
# (apt install busybox-static): a 2 MB image with one symlink per applet. No registry is needed.
set -eu
busybox="${BUSYBOX:-/bin/busybox}"
"$busybox" --list >/dev/null 2>&1 || { echo "no static busybox at $busybox: apt install busybox-static" >&2; exit 1; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
tar -C "$root" -c . | docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - atmos-example/busybox:local
