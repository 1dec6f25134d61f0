#!/bin/sh
set -eu
mkdir -p /var/www
echo "preparing $APPLICATION_NAME/$DEPLOYMENT_GROUP_NAME on $(hostname)"
