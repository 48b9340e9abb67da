#!/usr/bin/env bash
# Install what the project needs on this machine, then stop: Debian packages for the real
# peers the tests and benchmarks talk to (DCMTK, dicom3tools, Orthanc with its DICOMweb and
# PostgreSQL plugins, PostgreSQL, Chromium), the Python environment in .venv, and the prebuilt
# OHIF viewer (npm) in a cache outside the repo.
# Safe to run again: it only installs what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(dcmtk dicom3tools orthanc orthanc-dicomweb orthanc-postgresql postgresql chromium
  fonts-dejavu-core)
VENV=.venv
EXTRAS="notebooks,test,bench"

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if [ -z "$SUDO" ] || command -v sudo >/dev/null 2>&1; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: cannot install ${missing[*]} (not root, no sudo); peer tests will fail" >&2
  fi
fi
# Installing the Debian orthanc package starts a system-wide server on 4242/8042, and the
# postgresql package its cluster on 5432; the project starts its own peers on free ports, so
# the services this run just installed are stopped again. Nothing else is touched: not a
# service the machine already ran, and never another Orthanc (`service orthanc stop` would
# stop every Orthanc process, other test sessions' included), only the service's own pid.
just_installed=" ${missing[*]:-} "
if [[ $just_installed == *" orthanc "* ]] && [ -s /run/orthanc.pid ]; then
  kill "$(cat /run/orthanc.pid)" 2>/dev/null || true
fi
if [[ $just_installed == *" postgresql "* ]] && command -v service >/dev/null 2>&1; then
  service postgresql stop >/dev/null 2>&1 || true
fi

PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing workbench[$EXTRAS] into $VENV"
  "$VENV/bin/pip" install -q -e ".[$EXTRAS]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# OHIF: the prebuilt viewer is the dist/ folder of the npm package @ohif/app. It is unpacked
# once per version into a cache outside the repository, which `workbench serve` finds by itself
# (workbench.pacs.ohif.default_dist; the OhifDirectory option points elsewhere).
OHIF_VERSION=3.13.2
OHIF_CACHE="${WORKBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workbench}/ohif-$OHIF_VERSION"
if [ ! -f "$OHIF_CACHE/dist/index.html" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "bootstrap: fetching @ohif/app@$OHIF_VERSION into $OHIF_CACHE"
    scratch=$(mktemp -d)
    (cd "$scratch" && npm pack --silent "@ohif/app@$OHIF_VERSION" >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$OHIF_CACHE"
    rm -rf "$OHIF_CACHE/dist.partial"
    mv "$scratch/package/dist" "$OHIF_CACHE/dist.partial"
    mv "$OHIF_CACHE/dist.partial" "$OHIF_CACHE/dist"   # only a complete dist is ever found
    rm -rf "$scratch"
  else
    echo "bootstrap: npm is missing, OHIF not fetched; the OHIF tests will fail" >&2
  fi
fi
