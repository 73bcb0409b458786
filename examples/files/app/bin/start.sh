#!/bin/bash
# Start the example application: a tiny web server in a container that
# serves the configuration directory (Flatcar ships no Python/Node; run
# applications as containers).
set -euo pipefail
/usr/bin/docker rm --force app 2>/dev/null || true
exec /usr/bin/docker run --rm --name app --publish 8080:8080 \
  --volume /opt/app/etc:/srv:ro \
  docker.io/library/busybox:1.36 httpd -f -p 8080 -h /srv
