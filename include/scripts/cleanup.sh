#!/bin/sh
# The last provisioner of every bakery image (catalog `cleanup_script`): removes what the
# build leaves behind that would make every server of this image share one identity or
# carry the builder's access. Identity comes back at first boot: cloud-init injects the
# launch key and user-data, sshd regenerates host keys, systemd writes a new machine-id.
set -eu

# Packer's temporary key (and any other key a provisioner added) must not open every
# server made from this image.
for keys in /root/.ssh/authorized_keys /root/.ssh/authorized_keys2 \
  /home/*/.ssh/authorized_keys /home/*/.ssh/authorized_keys2; do
  [ -f "$keys" ] && rm -f "$keys"
done

# Shared host keys would let one server impersonate all the others.
rm -f /etc/ssh/ssh_host_*

for history in /root/.*_history /root/.lesshst /home/*/.*_history /home/*/.lesshst; do
  [ -f "$history" ] && rm -f "$history"
done

apt-get clean 2>/dev/null || true
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/* /var/tmp/*

# An empty (not missing) machine-id makes systemd generate a new one at first boot.
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id

if command -v cloud-init >/dev/null 2>&1; then
  # Forgets the builder's instance id and user-data, so the next boot is a first boot.
  cloud-init clean --logs
else
  rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data
fi

# Logs may hold build-time values (package feed URLs, the builder's addresses).
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
