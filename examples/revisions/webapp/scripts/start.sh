#!/bin/sh
set -eu
version=$(cat /var/www/webapp/VERSION)
printf 'running %s %s\n' "$version" "$DEPLOYMENT_ID" > /etc/fleet-app/webapp.status
echo "started webapp $version"
