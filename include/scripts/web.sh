#!/bin/sh
# The classic golden web image: nginx serving a page that says where it came from.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends nginx
echo "Baked with Packer" > /var/www/html/index.html
systemctl enable nginx 2>/dev/null || ln -sf /lib/systemd/system/nginx.service \
  /etc/systemd/system/multi-user.target.wants/nginx.service
