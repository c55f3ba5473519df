#!/bin/sh
# The hardened base every other server starts from: the metrics agent all servers run
# (Prometheus node exporter on :9100) and an sshd that takes keys only, never passwords
# or root.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends prometheus-node-exporter
systemctl enable prometheus-node-exporter 2>/dev/null || ln -sf \
  /lib/systemd/system/prometheus-node-exporter.service \
  /etc/systemd/system/multi-user.target.wants/prometheus-node-exporter.service
install -d -m 0755 /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/50-bakery-hardening.conf <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
CONF
