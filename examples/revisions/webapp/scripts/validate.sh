#!/bin/sh
# Fails on the hosts listed in /etc/fleet-app/fail-validate (one hostname a line), so tests and the demo can
# break a deployment on chosen hosts.
set -eu
if [ -f /etc/fleet-app/fail-validate ] && grep -qx "$(hostname)" /etc/fleet-app/fail-validate; then
  echo "validation failed on $(hostname)" >&2
  exit 1
fi
grep -q '^running ' /etc/fleet-app/webapp.status
echo "webapp healthy on $(hostname)"
