# The echo backend for `devcluster verify`: answers every request under
# {{PATH}} (the Ingress's) and {{ROUTE_PATH}} (the HTTPRoute's) with the run's token, with busybox's httpd (a pinned busybox, or
# `--echo-image`, else `--probe-image`).
mkdir -p /tmp/www{{PATH}} /tmp/www{{ROUTE_PATH}} && echo '{{TOKEN}}' > /tmp/www{{PATH}}/index.html && cp /tmp/www{{PATH}}/index.html /tmp/www{{ROUTE_PATH}}/ && exec httpd -f -p 8080 -h /tmp/www
