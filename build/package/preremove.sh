#!/bin/sh
# Runs before removal. On an upgrade the service stays registered; on removal
# it is stopped and unregistered. Data in /var/lib/integrasjonspunkt is kept.
set -e
case "$1" in
  upgrade|1) exit 0 ;; # deb passes "upgrade", rpm passes the count left (1)
esac
bin=/opt/integrasjonspunkt/bin/integrasjonspunkt
if [ -d /run/systemd/system ] && [ -x "$bin" ]; then
  "$bin" uninstall || true
fi
