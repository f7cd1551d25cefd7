#!/bin/sh
# image.sh BINARY VERSION NAME: the container image, built daemonless with
# buildah (no registry needed: the base is the glibc the binary was linked
# against, copied from this Debian machine's libc6, plus CA certificates).
# Docker format, because the OCI image format has no HEALTHCHECK.
set -eu
bin=$1 version=$2 name=$3
here=$(cd "$(dirname "$0")" && pwd)
uid=10001
root=$(mktemp -d)
ctr=
cleanup() { rm -rf "$root"; [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null; }
trap cleanup EXIT

# The dynamic loader and every library the binary needs, at the paths it
# asks for (cgo: SQLite, so glibc rather than a static binary).
for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
mkdir -p "$root/opt/integrasjonspunkt/bin" "$root/etc/integrasjonspunkt" "$root/etc/ssl/certs" \
         "$root/var/lib/integrasjonspunkt" "$root/tmp"
cp "$bin" "$root/opt/integrasjonspunkt/bin/integrasjonspunkt"
cp "$here/integrasjonspunkt-local.properties" "$root/etc/integrasjonspunkt/"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nintegrasjonspunkt:x:%s:%s::/var/lib/integrasjonspunkt:/sbin/nologin\n' $uid $uid >"$root/etc/passwd"
printf 'root:x:0:\nintegrasjonspunkt:x:%s:\n' $uid >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
chmod 0755 "$root/opt/integrasjonspunkt/bin/integrasjonspunkt"
chmod 0644 "$root/etc/integrasjonspunkt/integrasjonspunkt-local.properties"
chmod 1777 "$root/tmp"
chmod 0750 "$root/var/lib/integrasjonspunkt"
chown -R $uid:$uid "$root/var/lib/integrasjonspunkt"

exe=/opt/integrasjonspunkt/bin/integrasjonspunkt
cfg=/etc/integrasjonspunkt/integrasjonspunkt-local.properties
export BUILDAH_FORMAT=docker
ctr=$(buildah from scratch)
buildah copy "$ctr" "$root" / >/dev/null
# Self-update off: a container is updated by pulling a new image.
buildah config \
  --user $uid:$uid \
  --workingdir /var/lib/integrasjonspunkt \
  --volume /var/lib/integrasjonspunkt \
  --env EFM_UPDATE_MODE=off \
  --port 9093 \
  --entrypoint "[\"$exe\"]" \
  --cmd "run --config $cfg --data /var/lib/integrasjonspunkt" \
  --healthcheck "CMD $exe probe --config $cfg" \
  --healthcheck-interval 30s --healthcheck-timeout 10s --healthcheck-start-period 30s --healthcheck-retries 3 \
  --stop-signal SIGTERM \
  --label org.opencontainers.image.title=integrasjonspunkt \
  --label org.opencontainers.image.description="eFormidling integration point" \
  --label org.opencontainers.image.version="$version" \
  "$ctr"
buildah commit --quiet --format docker "$ctr" "$name" >/dev/null
echo "$name"
