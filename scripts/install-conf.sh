#!/bin/sh
# Installs Debian-style raceq.load and raceq.conf into mods-available, so that
# "a2enmod raceq" finds them. Honours DESTDIR; APXS and APACHE_MODS_AVAILABLE
# may be overridden.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
apxs=${APXS:-apxs}
destdir=${DESTDIR:-}
mods=${APACHE_MODS_AVAILABLE:-/etc/apache2/mods-available}
libexec=$("$apxs" -q LIBEXECDIR)

install -d "$destdir$mods"
sed "s|/usr/lib/apache2/modules/|$libexec/|" "$top/conf/raceq.load" >"$destdir$mods/raceq.load"
chmod 0644 "$destdir$mods/raceq.load"
install -m 0644 "$top/conf/raceq.conf" "$destdir$mods/raceq.conf"
echo "installed $destdir$mods/raceq.load and raceq.conf; enable with: a2enmod raceq"

# The default store's directory, writable by the server's user (the owner is
# set when installing as root into the live system; a package sets it itself).
if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] && id www-data >/dev/null 2>&1; then
    install -d -m 0755 -o www-data -g www-data /var/lib/raceq
else
    install -d -m 0755 "$destdir/var/lib/raceq"
fi
