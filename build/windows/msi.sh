#!/bin/sh
# msi.sh EXE VERSION OUT: the Windows installer from integrasjonspunkt.wxs.
# wixl (msitools) covers Product, files, ServiceInstall and ServiceControl;
# msibuild then adds what wixl has no element for: the Permanent and
# NeverOverwrite component bits (configuration and data outlive uninstall),
# the condition that starts the service again only after an upgrade,
# delayed automatic start and restart on failure (operations.md §1.2:
# OnFailure=restart after 5 s, failure count reset after a day).
set -eu
exe=$1 version=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
# MSI versions are numeric: 1.4.2-rc.1 installs as 1.4.2.
msiversion=$(printf '%s' "$version" | sed 's/[-+].*//')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# wixl wants sources relative to the working directory.
cp "$exe" "$work/integrasjonspunkt.exe"
cp "$here/integrasjonspunkt-local.properties" "$here/integrasjonspunkt.wxs" "$work/"
(cd "$work" && wixl -a x64 -D Version="$msiversion" -D Exe=integrasjonspunkt.exe \
  -D Config=integrasjonspunkt-local.properties -o out.msi integrasjonspunkt.wxs)
# Component attributes: 256 = 64-bit, 16 = permanent, 128 = never overwrite.
msibuild "$work/out.msi" \
  -q "UPDATE \`Component\` SET \`Attributes\` = 400 WHERE \`Component\` = 'ConfigTemplate'" \
  -q "UPDATE \`Component\` SET \`Attributes\` = 272 WHERE \`Component\` = 'DataDir'" \
  -q "UPDATE \`Component\` SET \`Condition\` = 'WIX_UPGRADE_DETECTED AND START_SERVICE = \"1\"' WHERE \`Component\` = 'ServiceStartOnUpgrade'" \
  -q "CREATE TABLE \`MsiServiceConfig\` (\`MsiServiceConfig\` CHAR(72) NOT NULL, \`Name\` CHAR(255) NOT NULL, \`Event\` SHORT NOT NULL, \`ConfigType\` LONG NOT NULL, \`Argument\` CHAR(0), \`Component_\` CHAR(72) NOT NULL PRIMARY KEY \`MsiServiceConfig\`)" \
  -q "INSERT INTO \`MsiServiceConfig\` (\`MsiServiceConfig\`, \`Name\`, \`Event\`, \`ConfigType\`, \`Argument\`, \`Component_\`) VALUES ('DelayedStart', 'integrasjonspunkt', 1, 3, '1', 'ServiceExe')" \
  -q "CREATE TABLE \`MsiServiceConfigFailureActions\` (\`MsiServiceConfigFailureActions\` CHAR(72) NOT NULL, \`Name\` CHAR(255) NOT NULL, \`Event\` SHORT NOT NULL, \`ResetPeriod\` LONG, \`RebootMessage\` CHAR(0) LOCALIZABLE, \`Command\` CHAR(0), \`Actions\` CHAR(0), \`DelayActions\` CHAR(0), \`Component_\` CHAR(72) NOT NULL PRIMARY KEY \`MsiServiceConfigFailureActions\`)" \
  -q "INSERT INTO \`MsiServiceConfigFailureActions\` (\`MsiServiceConfigFailureActions\`, \`Name\`, \`Event\`, \`ResetPeriod\`, \`Actions\`, \`DelayActions\`, \`Component_\`) VALUES ('RestartOnFailure', 'integrasjonspunkt', 1, 86400, '1[~]1[~]1', '5000[~]5000[~]5000', 'ServiceExe')" \
  -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Condition\`, \`Sequence\`) VALUES ('MsiConfigureServices', 'VersionNT >= 600', 5850)"
mv "$work/out.msi" "$out"
