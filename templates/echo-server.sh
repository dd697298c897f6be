# The echo backend for `devcluster verify`: answers every request under
# {{PATH}} with the run's token, with busybox's httpd (a pinned busybox, or
# `--echo-image`, else `--probe-image`).
mkdir -p /tmp/www{{PATH}} && echo '{{TOKEN}}' > /tmp/www{{PATH}}/index.html && exec httpd -f -p 8080 -h /tmp/www
