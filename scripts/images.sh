#!/usr/bin/env bash
# Build the platform's own images with buildah into podman's storage, reproducibly (`make images`):
#   services   localhost/reprolab/services   the five services, one entry point each
#                                             (python -m reprolab_<service>), from the offline base and uv.lock
#   build-job  localhost/reprolab/build-job  rootless buildah + curl + tar for the kubernetes build Job
#   fetcher    localhost/reprolab/fetcher    sh, curl, tar, gzip, unzip, coreutils for the run Job
#
#   scripts/images.sh [services|build-job|fetcher ...]      (default: all three)
#
# Every image is tagged with a hash of its inputs (this script, its Containerfile-like steps, uv.lock and
# the sources for the services image), so an unchanged image is not built again; FORCE=1 rebuilds and
# TAG=x builds under another tag (the reproducibility test builds twice and compares digests).
# SOURCE_DATE_EPOCH (default: the time of the last commit that changed the image's inputs) is the time
# of every file and of the image config
# (buildah --timestamp), so the same commit gives the same digests. The Debian images come from the
# mirror as it is that day (mmdebstrap, SOURCE_DATE_EPOCH): equal while Debian's archive is unchanged.
# Each image carries its CycloneDX SBOM at /usr/share/doc/reprolab/sbom.cdx.json (it names the digest
# of the image it was added to) and a copy naming the final digest is written to $OUT/<name>.cdx.json,
# beside $OUT/<name>.digest. No compiler, cache or CA bundle of the host ends up in an image: uv, its
# cache and the host CA bundle are bind mounts of the build step only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/.reprolab/images}
PREFIX=${PREFIX:-localhost/reprolab}
BASE=${BASE:-localhost/reprolab/bookworm-python:latest}
SUITE=bookworm
FIXED_EPOCH=${SOURCE_DATE_EPOCH:-}
# SOURCE_DATE_EPOCH of one image: the author time (kept by rebases) of the last commit that changed its inputs (so a commit
# elsewhere neither changes its digest nor makes the tests build it again), unless set by the caller.
epoch_of() {
  if [ -n "$FIXED_EPOCH" ]; then echo "$FIXED_EPOCH"; return; fi
  local t
  t=$(git log -1 --format=%at -- scripts/images.sh scripts/image_sbom.py "$@" 2>/dev/null || true)
  echo "${t:-1700000000}"
}
PY=${PY:-$ROOT/.venv/bin/python}
UV=${UV:-$(command -v uv || echo "$ROOT/.tools/bin/uv")}
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p "$OUT"

work=$(mktemp -d)
ctrs=()
cleanup() {
  for c in "${ctrs[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

inputs_hash() {  # text files... -> short sha256 of the text, the files' (relative) names and contents,
  # this script and the epoch
  { echo "$1"; shift; sha256sum scripts/images.sh scripts/image_sbom.py "$@"; echo "$SOURCE_DATE_EPOCH"; } |
    sha256sum | cut -c1-16
}

present() { [ "${FORCE:-0}" != 1 ] && podman image exists "$1"; }

commit() {  # container ref: commit with fixed timestamps and no builder identity label
  buildah commit --quiet --timestamp "$SOURCE_DATE_EPOCH" --identity-label=false --format oci --rm "$1" "$2" >/dev/null
}

# Commit the working container $1 as a stage image, take its inventory (dpkg + Python distributions),
# add the SBOM to the image, commit the final image $2 and write $OUT/<name>.{digest,cdx.json}.
finish() {
  # The stage's name ends up in the final image's history and annotations: one fixed name per image.
  local ctr=$1 ref=$2 name=$3 stage="localhost/reprolab-stage/$3:stage" digest final
  commit "$ctr" "$stage"
  digest=$(podman image inspect --format '{{.Digest}}' "$stage")
  "$PY" scripts/image_sbom.py inventory "$stage" > "$work/$name.inv.json"
  "$PY" scripts/image_sbom.py cyclonedx "$work/$name.inv.json" "${ref%:*}" "$digest" > "$work/$name.cdx.json"
  ctr=$(buildah from --pull-never --quiet "$stage"); ctrs+=("$ctr")
  buildah copy --quiet --chown 0:0 "$ctr" "$work/$name.cdx.json" /usr/share/doc/reprolab/sbom.cdx.json >/dev/null
  commit "$ctr" "$ref"
  podman rmi "$stage" >/dev/null
  final=$(podman image inspect --format '{{.Digest}}' "$ref")
  "$PY" scripts/image_sbom.py cyclonedx "$work/$name.inv.json" "$ref" "$final" > "$OUT/$name.cdx.json"
  echo "$ref@$final" > "$OUT/$name.digest"
  echo "images: $ref $final $(podman image inspect --format '{{.Size}}' "$ref" | numfmt --to=si)B"
}

# An image already built from the same inputs (another checkout, an earlier session): write this
# checkout's $OUT/<name>.{digest,cdx.json} for it. Its inventory is the stage's (the final image only adds
# the SBOM file, which is neither a Debian package nor a Python distribution).
reuse() {  # ref name
  local ref=$1 name=$2 final
  final=$(podman image inspect --format '{{.Digest}}' "$ref")
  # This checkout's files already name this digest: nothing to write (the inventory takes a minute).
  if [ "$(cat "$OUT/$name.digest" 2>/dev/null)" = "$ref@$final" ] && [ -s "$OUT/$name.cdx.json" ]; then
    echo "images: $ref present ($final)"; return
  fi
  "$PY" scripts/image_sbom.py inventory "$ref" > "$work/$name.inv.json"
  "$PY" scripts/image_sbom.py cyclonedx "$work/$name.inv.json" "$ref" "$final" > "$OUT/$name.cdx.json"
  echo "$ref@$final" > "$OUT/$name.digest"
  echo "images: $ref present ($final)"
}

# A Debian rootfs (mmdebstrap, minbase, no docs/man/locales, no apt lists or caches) with one user.
debian_rootfs() {  # out.tar uid user home packages...
  local tar=$1 uid=$2 user=$3 home=$4; shift 4
  mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "$*")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="chroot \"\$1\" useradd --uid $uid --user-group --home-dir $home --create-home --shell /bin/sh $user" \
    --customize-hook="echo '$user:100000:65536' > \"\$1/etc/subuid\"; echo '$user:100000:65536' > \"\$1/etc/subgid\"" \
    --customize-hook='for f in newuidmap newgidmap; do [ ! -e "$1/usr/bin/$f" ] || chmod u-s "$1/usr/bin/$f"; done' \
    --customize-hook='[ ! -e "$1/usr/bin/newuidmap" ] || { setcap cap_setuid=ep "$1/usr/bin/newuidmap" && setcap cap_setgid=ep "$1/usr/bin/newgidmap"; }' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/ldconfig/* "$1"/var/log/* "$1"/etc/machine-id' \
    "$SUITE" "$tar"
}

from_rootfs() {  # tar -> working container holding it
  local ctr
  ctr=$(buildah from --quiet scratch); ctrs+=("$ctr")
  buildah add --quiet "$ctr" "$1" / >/dev/null
  echo "$ctr"
}

build_services() {
  local files tag ref ctr
  export SOURCE_DATE_EPOCH; SOURCE_DATE_EPOCH=$(epoch_of uv.lock pyproject.toml libs services)
  mapfile -t files < <(git ls-files uv.lock pyproject.toml libs services | grep -v '^services/.*/tests/')
  tag=${TAG:-$(inputs_hash services "${files[@]}")}
  ref=$PREFIX/services:$tag
  if present "$ref"; then reuse "$ref" services; return; fi
  # Third-party wheels pinned with hashes from uv.lock; our own packages as wheels built here.
  "$UV" export --quiet --frozen --no-dev --no-emit-workspace --no-header \
    --package reprolab-gateway --package reprolab-registry --package reprolab-builder \
    --package reprolab-runner --package reprolab-audit -o "$work/requirements.txt"
  mkdir -p "$work/wheels"
  for p in libs/contracts libs/common libs/fasthash services/gateway services/registry services/builder services/runner services/audit; do
    "$UV" build --quiet --wheel --out-dir "$work/wheels" "$p" 2>/dev/null
  done
  ctr=$(buildah from --pull-never --quiet "$BASE"); ctrs+=("$ctr")
  buildah run --network host \
    -v "$(realpath "$UV")":/run/build/uv:ro -v "$("$UV" cache dir)":/run/build/uv-cache \
    -v "$work":/run/build/in:ro -v /etc/ssl/certs/ca-certificates.crt:/run/build/ca.crt:ro \
    --env UV_CACHE_DIR=/run/build/uv-cache --env SSL_CERT_FILE=/run/build/ca.crt --env UV_LINK_MODE=copy \
    --env UV_PYTHON_DOWNLOADS=never --env UV_NO_CONFIG=1 --env HOME=/run/build \
    --env SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
    "$ctr" -- sh -euc '
      /run/build/uv venv --quiet --python /usr/bin/python3 /opt/reprolab
      /run/build/uv pip install --quiet --python /opt/reprolab/bin/python --require-hashes --no-deps \
        -r /run/build/in/requirements.txt
      /run/build/uv pip install --quiet --python /opt/reprolab/bin/python --no-deps /run/build/in/wheels/*.whl
      # useradd writes the day of the last password change into /etc/shadow: the day of SOURCE_DATE_EPOCH
      # (given above), not of the build, or the same commit built on another day gets another digest.
      useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin reprolab
      # uv records when it installed a local wheel (uv_cache.json): a timestamp, so not reproducible.
      find /opt/reprolab -name uv_cache.json -delete
      sed -i "/uv_cache.json,/d" /opt/reprolab/lib/python3*/site-packages/reprolab_*.dist-info/RECORD
      find /opt/reprolab -name __pycache__ -prune -exec rm -rf {} +
      rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /root/.cache'
  # buildah run leaves the mount points of its bind mounts behind (empty): remove them.
  mnt=$(buildah mount "$ctr"); rm -rf "$mnt/run/build"; buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/opt/reprolab/bin:$PATH_ENV --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 \
    --env PYTHONUNBUFFERED=1 --user 10001:10001 --workingdir / --cmd '["python", "-m", "reprolab_gateway"]' \
    --label org.opencontainers.image.title=reprolab-services \
    --label org.opencontainers.image.source=reprolab "$ctr"
  finish "$ctr" "$ref" services
}

build_debian() {  # name uid user home entry-cmd packages...
  local name=$1 uid=$2 user=$3 home=$4 cmd=$5 tag ref ctr; shift 5
  export SOURCE_DATE_EPOCH; SOURCE_DATE_EPOCH=$(epoch_of)
  tag=${TAG:-$(inputs_hash "$name $uid $user $*")}
  ref=$PREFIX/$name:$tag
  if present "$ref"; then reuse "$ref" "$name"; return; fi
  debian_rootfs "$work/$name.tar" "$uid" "$user" "$home" "$@"
  ctr=$(from_rootfs "$work/$name.tar")
  rm -f "$work/$name.tar"
  buildah config --env PATH=$PATH_ENV --env LANG=C.UTF-8 --user "$uid:$uid" --workingdir "$home" --cmd "$cmd" \
    --label org.opencontainers.image.title="reprolab-$name" --label org.opencontainers.image.source=reprolab "$ctr"
  finish "$ctr" "$ref" "$name"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(services build-job fetcher)
for t in "${targets[@]}"; do
  case $t in
    services) build_services ;;
    # The build Job runs rootless buildah (vfs storage, chroot isolation) as uid 1000; newuidmap and
    # newgidmap (uidmap) map the subordinate ids in /etc/subuid for the image's own users. They carry
    # file capabilities (cap_setuid/cap_setgid), not the setuid bit: run as uid 1000 they own the new
    # user namespace, which a setuid-root helper would not (the kernel then wants CAP_SYS_ADMIN).
    build-job) build_debian build-job 1000 build /home/build '["buildah", "--version"]' \
                 buildah uidmap curl ca-certificates tar ;;
    fetcher) build_debian fetcher 1000 fetch /home/fetch '["curl", "--version"]' curl ca-certificates unzip ;;
    *) echo "images: unknown image $t (services, build-job, fetcher)" >&2; exit 2 ;;
  esac
done
