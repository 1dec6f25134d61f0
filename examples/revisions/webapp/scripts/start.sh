#!/bin/sh
# ApplicationStart: start the web app detached from this hook (see webapp_service.py) and wait until it serves.
set -eu
version=$(cat /var/www/webapp/VERSION)
/usr/bin/python3 "$(dirname "$0")/webapp_service.py" start
printf 'running %s %s\n' "$version" "$DEPLOYMENT_ID" > /etc/fleet-app/webapp.status
echo "started webapp $version"
