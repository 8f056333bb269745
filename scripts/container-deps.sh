#!/usr/bin/env bash
# Container engine for real builds and runs: Debian's podman, buildah, runc, skopeo, the CNCF
# distribution registry and mmdebstrap; runc as the runtime (crun fails on hybrid cgroups here)
# and lower default ulimits. Needs root on a fresh machine; a no-op when all is in place.
set -euo pipefail
need=()
for tool in podman buildah runc skopeo mmdebstrap docker-registry; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "container-deps: missing ${need[*]} and not root to install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc skopeo docker-registry mmdebstrap \
    uidmap >/dev/null
fi
conf=/etc/containers/containers.conf
if [ "$(id -u)" = 0 ] && ! grep -q 'runtime = "runc"' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  cat > "$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
fi
echo "container-deps: podman $(podman --version | awk '{print $3}'), buildah $(buildah --version | awk '{print $3}')"
