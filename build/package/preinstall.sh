#!/bin/sh
# Runs before the files are unpacked: the configuration is installed
# root:integrasjonspunkt 0640, so the service's group and user must exist
# first. Idempotent; `integrasjonspunkt install` finds the user made here.
set -e
user="${EFM_PACKAGE_USER:-integrasjonspunkt}"
if [ -n "${EFM_PACKAGE_NO_ACCOUNT:-}" ]; then
  exit 0
fi
if ! getent group "$user" >/dev/null; then
  groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
  useradd --system --gid "$user" --no-create-home --home-dir /var/lib/integrasjonspunkt \
    --shell /usr/sbin/nologin "$user"
fi
