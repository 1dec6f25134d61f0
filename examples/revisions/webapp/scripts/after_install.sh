#!/bin/sh
# Runs as the deploy user (runas: deploy).
set -eu
echo "installed version $(cat /var/www/webapp/VERSION) as $(id -un)"
