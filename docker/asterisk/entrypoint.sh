#!/bin/sh
# Lays the repository's asterisk-config/ (mounted at /etc/asterisk/dnc) over the packaged
# configuration, then runs Asterisk in the foreground so that the container stops with it.
set -eu
src=/etc/asterisk/dnc
if [ -d "$src" ]; then
    for f in "$src"/*.conf; do
        [ -e "$f" ] || continue
        cp "$f" "/etc/asterisk/$(basename "$f")"
    done
fi
# The compose file publishes RTP on 10000-10099/udp only: keep Asterisk's media ports inside that range
# unless asterisk-config/ brings its own rtp.conf.
if [ ! -e "$src/rtp.conf" ]; then
    printf '[general]\nrtpstart=10000\nrtpend=10099\n' > /etc/asterisk/rtp.conf
fi
chown -R asterisk:asterisk /var/lib/asterisk /var/spool/asterisk /var/log/asterisk /var/run/asterisk 2>/dev/null || true
exec "$@"
