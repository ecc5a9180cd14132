#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa's lavapipe) on Debian when no Vulkan driver is present.
# Prefers bookworm-backports (Mesa 25.x, several times faster than bookworm's 22.3) and falls back
# to the plain suite. The backports source is derived from the machine's own apt source file, so
# no mirror address is written here.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

have_vulkan() {
  ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1 &&
    ldconfig -p | grep -q 'libvulkan.so.1'
}

if have_vulkan && [ "${WGCNN_FORCE_VULKAN_INSTALL:-0}" != 1 ]; then
  echo "install-vulkan: a Vulkan driver is already present"
  exit 0
fi

src=/etc/apt/sources.list.d/debian.sources
bp=/etc/apt/sources.list.d/wgcnn-backports.sources
if [ -f "$src" ] && grep -q '^Suites:.*bookworm' "$src"; then
  # Keep the first stanza (the main archive), with its suite switched to bookworm-backports.
  awk 'BEGIN{RS=""; ORS="\n\n"} NR==1 { print }' "$src" |
    sed 's/^Suites:.*/Suites: bookworm-backports/' >"$bp"
fi

apt-get update -qq || true
if [ -f "$bp" ] && apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1; then
  echo "install-vulkan: installed Mesa from bookworm-backports"
else
  echo "install-vulkan: backports unavailable; installing Mesa from the plain suite"
  rm -f "$bp"
  apt-get update -qq || true
  apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi
dpkg-query -W -f='install-vulkan: ${Package} ${Version}\n' mesa-vulkan-drivers libvulkan1
