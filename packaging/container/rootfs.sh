#!/bin/sh
# Lays out the node image's root filesystem: the aex binary, the node configuration, a user
# and group `aex` (10001) owning the data directory, and the C runtime that module binaries
# load (the deployer builds modules with cargo's defaults: dynamically linked against glibc,
# so a module needs the loader, libc, libm and libgcc_s of a glibc at least as new as the
# one it was built with). Nothing else: no shell, no package manager.
#
#   sh packaging/container/rootfs.sh AEX_BINARY DEST
#
# Run as root (it sets ownership) from the repository's root, on the build machine whose
# glibc the image gets.
set -eu

aex=$1
dest=$2

mkdir -p "$dest/usr/local/bin" "$dest/etc/aex" "$dest/var/lib/aex" "$dest/tmp"
install -m 0755 "$aex" "$dest/usr/local/bin/aex"
# The documented example (packaging/node.toml): data_dir /var/lib/aex, admit_file
# /etc/aex/deployers (mounted by whoever runs the image).
install -m 0644 packaging/node.toml "$dest/etc/aex/node.toml"
printf 'root:x:0:0:root:/root:/sbin/nologin\naex:x:10001:10001:aex node agent:/var/lib/aex:/sbin/nologin\n' \
    >"$dest/etc/passwd"
printf 'root:x:0:\naex:x:10001:\n' >"$dest/etc/group"
# A named volume mounted here starts with this ownership and mode.
chown 10001:10001 "$dest/var/lib/aex"
chmod 0700 "$dest/var/lib/aex"
chmod 1777 "$dest/tmp"

# The glibc that modules load: the loader and libraries of this machine's own programs.
loader=$(ldd /bin/sh | awk '/ld-linux/ { print $1 }')
libdir=$(dirname "$(ldd /bin/sh | awk '$1 == "libc.so.6" { print $3 }')")
cp --parents -L "$loader" "$dest"
for lib in libc.so.6 libm.so.6 libgcc_s.so.1; do
    cp --parents -L "$libdir/$lib" "$dest"
done
echo "rootfs in $dest: aex $(du -h "$aex" | cut -f1), glibc from $libdir"
