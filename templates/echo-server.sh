# The echo backend for `devcluster verify`: answers every request under
# {{PATH}} with the run's token, using the shell tools of the image already on
# the node (busybox httpd).
mkdir -p /tmp/www{{PATH}} && echo '{{TOKEN}}' > /tmp/www{{PATH}}/index.html && exec httpd -f -p 8080 -h /tmp/www
