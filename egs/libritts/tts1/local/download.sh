#!/usr/bin/env bash
# local/download.sh DEST SUBSETS: fetch and unpack LibriTTS subsets (comma-separated) into DEST/LibriTTS.
# Skips subsets already unpacked; needs the network (OpenSLR resource 60).
set -euo pipefail
dest=$1
subsets=$2
url=https://www.openslr.org/resources/60
mkdir -p "$dest"
for subset in ${subsets//,/ }; do
  if [ -d "$dest/LibriTTS/$subset" ]; then echo "$subset: already there"; continue; fi
  wget -c -O "$dest/$subset.tar.gz" "$url/$subset.tar.gz"
  tar -xzf "$dest/$subset.tar.gz" -C "$dest"
  rm "$dest/$subset.tar.gz"
done
