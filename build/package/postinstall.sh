#!/bin/sh
# Runs after the package is installed or upgraded. It keeps an operator's own
# configuration, adds the notify default when a migrated file lacks an update
# mode, and registers the service (idempotent).
set -e
config="${EFM_PACKAGE_CONFIG:-/etc/integrasjonspunkt/integrasjonspunkt-local.properties}"
bin="${EFM_PACKAGE_BIN:-/opt/integrasjonspunkt/bin/integrasjonspunkt}"

if [ -f "$config" ] && ! grep -Eq '^[[:space:]]*efm\.update\.mode[[:space:]]*[=:]' "$config"; then
  printf '\n# added by the package: the package manager owns the binary\nefm.update.mode=notify\n' >> "$config"
fi

# A file an older package left root:root cannot be read by the service.
group="${EFM_PACKAGE_USER:-integrasjonspunkt}"
if [ -f "$config" ] && [ "$(stat -c %G "$config")" = root ] && getent group "$group" >/dev/null; then
  chgrp "$group" "$config"
fi

if [ -n "${EFM_PACKAGE_NO_SERVICE:-}" ]; then
  exit 0
fi
if [ -d /run/systemd/system ]; then
  "$bin" install --config "$config" --data /var/lib/integrasjonspunkt
  systemctl daemon-reload >/dev/null 2>&1 || true
else
  echo "integrasjonspunkt: no systemd here; run '$bin install' on the target system" >&2
fi
