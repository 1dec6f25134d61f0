#!/bin/sh
# ApplicationStop: runs the previous revision's copy of this script. Stops the web app gracefully and waits until
# its port is free; nothing to do when it is not running.
set -eu
/usr/bin/python3 "$(dirname "$0")/webapp_service.py" stop
rm -f /etc/fleet-app/webapp.status
echo "stopped webapp on $(hostname) for $DEPLOYMENT_ID"
