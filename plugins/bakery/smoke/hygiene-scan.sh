#!/bin/sh
# Image hygiene scan, run as root on a freshly booted smoke instance (over SSH, script
# on stdin). Prints one line per finding, "FINDING<TAB>rule<TAB>path", and never prints
# a secret itself: findings name where, not what.
#
# Inputs come through the environment of the `sh -s` that runs this script, set by the
# smoke test from its own stdin so that nothing lands on a command line:
#   SCAN_ROOT        the filesystem to scan ("/" on an instance; a folder in unit tests)
#   LAUNCH_KEY       the public key injected at this boot (the only authorized key allowed)
#   LAUNCHED_AT      epoch seconds when this instance was launched
#   INSTANCE_ID      this instance's id, as cloud-init records it
#   SECRETS_FILE     a 0600 file of secret values (one per line) to look for, or empty
#   ALLOW_FILE       a file of shell glob patterns (one per line) exempt from content rules
#   SKIP_CLOUD_INIT  "1" where the platform runs no cloud-init (vSphere templates, say)
set -u
root=${SCAN_ROOT:-/}
root=${root%/}
max_size=${MAX_FILE_BYTES:-20000000}

finding() { printf 'FINDING\t%s\t%s\n' "$1" "${2#"$root"}"; }

allowed() {
  [ -n "${ALLOW_FILE:-}" ] && [ -s "$ALLOW_FILE" ] || return 1
  rel=${1#"$root"}
  while IFS= read -r pattern; do
    [ -n "$pattern" ] || continue
    # shellcheck disable=SC2254 # the pattern is a glob on purpose
    case "$rel" in $pattern) return 0 ;; esac
  done < "$ALLOW_FILE"
  return 1
}

# A file Debian's package manager installed and nobody changed is a package's own code,
# test vector or example (cloud-init's source names PEM headers), not something baked in;
# so is the bytecode Python compiled from such a file.
packaged_unchanged() {
  rel=${1#"$root"}
  case "$rel" in
    */__pycache__/*.pyc)
      module=${rel##*/}
      rel="${rel%/__pycache__/*}/${module%%.*}.py"
      ;;
  esac
  sums=$(grep -l -F "  ${rel#/}" "$root"/var/lib/dpkg/info/*.md5sums 2>/dev/null | head -n 1)
  [ -n "$sums" ] || return 1
  want=$(grep -F "  ${rel#/}" "$sums" | head -n 1 | cut -d' ' -f1)
  have=$(md5sum "$root$rel" 2>/dev/null | cut -d' ' -f1)
  [ -n "$want" ] && [ "$want" = "$have" ]
}

# Regular files of the root filesystem only (-xdev: not /proc, /sys, /run or /dev) that
# hold a match; one grep per batch of files, not per file.
files_matching() {
  find "$root/" -xdev -type f -size -"${max_size}"c -print0 2>/dev/null |
    xargs -0 -r grep -l -a "$@" -- 2>/dev/null
}

content_rule() {
  rule=$1
  shift
  files_matching "$@" | while IFS= read -r path; do
    allowed "$path" && continue
    packaged_unchanged "$path" && continue
    finding "$rule" "$path"
  done
}

content_rule private-key -E -e '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----'
content_rule aws-access-key-id -E -e '(^|[^A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}([^A-Z0-9]|$)'

if [ -n "${SECRETS_FILE:-}" ] && [ -s "$SECRETS_FILE" ]; then
  files_matching -F -f "$SECRETS_FILE" | while IFS= read -r path; do
    [ "$path" = "$SECRETS_FILE" ] || finding secret-value "$path"
  done
fi

find "$root/" -xdev \( -path '*/.aws/credentials' -o -path '*/.aws/config' \
  -o -path '*/.azure/*' -o -path '*/.ssh/id_*' -o -path '*/.config/gcloud/*' \) \
  -type f -print 2>/dev/null | while IFS= read -r path; do
  allowed "$path" || finding cloud-credentials-file "$path"
done

# The launch key's base64 body: cloud-init may write it with options in front (root's
# "please log in as admin" entry), so lines are matched on the key itself.
launch_key_body=$(printf '%s\n' "${LAUNCH_KEY:-}" | awk '{ print $2 }')
find "$root/" -xdev -type f \( -name authorized_keys -o -name authorized_keys2 \) -print \
  2>/dev/null | while IFS= read -r path; do
  # Any key but the one injected at this boot was baked in (the builder's, say).
  if grep -v -F -e "${launch_key_body:-no launch key}" -- "$path" |
    grep -q -v -E '^[[:space:]]*(#|$)'; then
    finding foreign-authorized-key "$path"
  fi
done

find "$root/" -xdev -type f \( -name '.*_history' -o -name '.lesshst' \) -size +0c -print \
  2>/dev/null | while IFS= read -r path; do
  finding shell-history "$path"
done

# systemd writes a machine-id at first boot when the image's is empty; one older than
# this instance's launch came from the build and is shared by every server of the image.
machine_id="$root/etc/machine-id"
if [ -s "$machine_id" ] && [ -n "${LAUNCHED_AT:-}" ]; then
  written=$(stat -c %Y "$machine_id")
  [ "$written" -lt "$LAUNCHED_AT" ] && finding machine-id-baked "$machine_id"
fi

if [ "${SKIP_CLOUD_INIT:-0}" != 1 ]; then
  if [ ! -x "$root/usr/bin/cloud-init" ]; then
    finding cloud-init-missing "$root/usr/bin/cloud-init"
  elif [ -d "$root/var/lib/cloud/instances" ]; then
    # After `cloud-init clean` only this boot's instance is recorded; any other id is
    # state from the build (its instance id, its user-data) baked into the image.
    for dir in "$root"/var/lib/cloud/instances/*; do
      [ -e "$dir" ] || continue
      [ "${dir##*/}" = "${INSTANCE_ID:-}" ] || finding cloud-init-not-clean "$dir"
    done
  fi
fi
exit 0
