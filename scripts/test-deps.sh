#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 with trust auth for user postgres; install and
# start it with apt when it does not (needs root, as in CI). Leaves an existing server alone.
# Also installs Debian's chromium (and a font) for the portal's browser tests (tests/web), which
# Playwright drives through its executable_path: no browser download from the internet; and slapd for
# the LDAP sign-in tests (tests/auth).
set -euo pipefail

if ! command -v chromium >/dev/null || ! [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: chromium (and fonts-dejavu-core) are missing and I am not root to install them;" >&2
    echo "           the browser tests in tests/web need them. Run 'make test' as root." >&2
    exit 1
  fi
  echo "test-deps: installing chromium and fonts-dejavu-core with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
echo "test-deps: $(chromium --version 2>/dev/null | head -n1)"

# Debian's slapd for the LDAP sign-in tests (tests/auth start their own slapd with their own config and
# data on a loopback port); no system directory is configured (debconf slapd/no_configuration).
if ! [ -x /usr/sbin/slapd ] || ! [ -x /usr/sbin/slapadd ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: slapd is missing and I am not root to install it; tests/auth need it. Run 'make test' as root." >&2
    exit 1
  fi
  echo "test-deps: installing slapd and ldap-utils with apt"
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null
fi
echo "test-deps: $(/usr/sbin/slapd -VV 2>&1 | head -n1)"

# checkov (tests/chart/test_checkov.py) in its own virtualenv: its pins conflict with uv.lock.
bash "$(dirname "$0")/checkov-venv.sh"

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }

if pg_up; then
  echo "test-deps: PostgreSQL is up on 127.0.0.1:5432"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: PostgreSQL is not running on 127.0.0.1:5432 and I am not root to install it." >&2
  echo "           Start one with trust auth for user postgres, or run 'make test' as root." >&2
  exit 1
fi
if ! command -v pg_ctlcluster >/dev/null; then
  echo "test-deps: installing PostgreSQL with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n1)
hba=/etc/postgresql/$version/main/pg_hba.conf
# Tests connect as postgres over loopback without a password: trust loopback only.
if ! grep -q "reprolab-test" "$hba"; then
  sed -i '1i host all all 127.0.0.1/32 trust # reprolab-test\nhost all all ::1/128 trust # reprolab-test' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 1 30); do pg_up && break; sleep 1; done
pg_up || { echo "test-deps: PostgreSQL did not come up" >&2; exit 1; }
echo "test-deps: PostgreSQL $version is up"
