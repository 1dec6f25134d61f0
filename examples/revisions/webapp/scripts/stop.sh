#!/bin/sh
# ApplicationStop: runs the previous revision's copy of this script.
set -eu
rm -f /etc/fleet-app/webapp.status
echo "stopped webapp on $(hostname) for $DEPLOYMENT_ID"
