#!/bin/sh
# Runs a command inside a fresh network namespace that has only a loopback
# interface (with multicast, which WebRTC stacks probe for mDNS). ICE
# candidates gathered in it can name nothing but 127.0.0.1 and ::1, so
# WebRTC tests never touch the machine's real network.
set -eu
if [ "$(id -u)" = 0 ]; then
  flags=-n
else
  flags=-rn # an unprivileged user namespace, where the kernel allows it
fi
exec unshare $flags sh -c '
  export PEERCHAT_NETNS=1
  ip link set lo up
  ip link set lo multicast on
  ip route add 224.0.0.0/4 dev lo
  exec "$@"
' netns "$@"
