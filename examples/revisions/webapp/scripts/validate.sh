#!/bin/sh
# ValidateService. A revision can carry a file fail-hosts (one hostname a line) to fail on chosen hosts: the demo
# and the tests use it to break a deployment on purpose.
set -eu
revision=$(dirname "$0")/..
if [ -f "$revision/fail-hosts" ] && grep -qx "$(hostname)" "$revision/fail-hosts"; then
  echo "validation failed on $(hostname)" >&2
  exit 1
fi
grep -q '^running ' /etc/fleet-app/webapp.status
# The app answers /health with this revision's version, not an older one still running.
/usr/bin/python3 "$revision/scripts/webapp_service.py" check "$(cat "$revision/app/VERSION")"
echo "webapp healthy on $(hostname)"
