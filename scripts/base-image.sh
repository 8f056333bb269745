#!/usr/bin/env bash
# Build the offline base image localhost/reprolab/bookworm-python:latest with mmdebstrap and import
# it into podman's storage (no image registry is reachable here). SOURCE_DATE_EPOCH makes the
# rootfs reproducible. Skips the work when the image already exists (FORCE=1 rebuilds).
set -euo pipefail
IMAGE=${IMAGE:-localhost/reprolab/bookworm-python:latest}
if [ "${FORCE:-0}" != 1 ] && podman image exists "$IMAGE"; then
  echo "base-image: $IMAGE present"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} mmdebstrap --quiet --variant=minbase \
  --include=python3,ca-certificates bookworm "$tmp/rootfs.tar"
podman import --quiet --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' "$tmp/rootfs.tar" "$IMAGE" >/dev/null
echo "base-image: built $IMAGE ($(podman image inspect --format '{{.Id}}' "$IMAGE" | cut -c1-12))"
