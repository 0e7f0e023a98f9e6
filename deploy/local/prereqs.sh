#!/usr/bin/env bash
# Installs the machine packages CityData needs (Debian/Ubuntu), only those missing.
# Java 17 + Maven run the Kafka broker (and, as a JDK, build the EU DSS validator the signing tests
# use); PostgreSQL is the database; SoftHSM2 holds signing keys;
# kcat, openssl, poppler-utils and the NSS tools are the independent checkers the tests use.
set -euo pipefail

packages=(openjdk-17-jdk-headless maven postgresql postgresql-contrib softhsm2 kcat openssl
  poppler-utils libnss3-tools fonts-dejavu-core chromium)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "prereqs: all machine packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "prereqs: missing Debian packages: ${missing[*]}" >&2
  echo "prereqs: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "prereqs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system cluster on 5432 when it installs PostgreSQL; ours runs from var/.
command -v pg_ctlcluster >/dev/null && pg_ctlcluster --force "$(ls /etc/postgresql | sort -V | tail -n1)" main stop 2>/dev/null || true
echo "prereqs: done"
