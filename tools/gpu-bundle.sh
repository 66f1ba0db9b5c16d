#!/usr/bin/env bash
# Fills .gpu-bundle/ (git-ignored, <= 48 MiB) with everything tools/gpu-check.sh needs on a lent
# GPU machine that has nvcc, a CUDA PyTorch, CMake, ninja and Python, but none of our Debian
# packages, no network and no ../shared (issue 18):
#   prefix/usr/...   Debian 12 packages unpacked with dpkg -x: the headers, CMake configs and
#                    .so files of HDF5, CLI11, spdlog/fmt, nlohmann-json, GoogleTest, PCRE2, utf8proc, zlib,
#                    pkgconf, and the runtime libraries they need (the ldd closure of the roots
#                    below minus glibc, libgcc and libstdc++, which every image has). The GPU image
#                    is Ubuntu-like with glibc >= 2.39, so Debian 12's builds run there.
#   shared/...       the parts of ../shared the check uses (stories260K, SST-2 validation, TriviaQA
#                    questions), laid out like ../shared so NPEFF_SHARED_DIR can point at it.
#   tasks/*.json     configs/tasks/{sst2,triviaqa}.json with their data paths pointing into shared/.
#   smollm2/vocab.gguf  SmolLM2's tokenizer (the gzipped test fixture, unpacked), for the random
#                    SmolLM2-360M-shaped model that phase (b) builds on the GPU machine.
#   MANIFEST         package versions, sizes, the runtime sonames (gpu-check.sh fills only those
#                    the machine lacks, so its own libraries always win).
# Usage: tools/gpu-bundle.sh [BUNDLE_DIR=.gpu-bundle]     (run here, on Debian 12, with apt)
# Prints the `carry` list to give the device tool. Rerunning rebuilds the bundle from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-.gpu-bundle}
shared=${NPEFF_SHARED_DIR:-../shared}
limit_mib=48
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

# Build-time packages: headers, CMake configs, pkg-config files, link-time .so symlinks.
dev_packages=(libhdf5-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev
              libpcre2-dev libutf8proc-dev zlib1g-dev pkgconf pkgconf-bin)
# Libraries our binaries (or pkgconf) load; their ldd closure is added below.
runtime_roots=(libhdf5_serial.so.103 libspdlog.so.1.10 libfmt.so.9 libpcre2-8.so.0 libutf8proc.so.2 libz.so.1
               libpkgconf.so.3)
# Always present on any glibc system with a C++ compiler: never carried.
skip_packages=" libc6 libgcc-s1 libstdc++6 "

rm -rf "$bundle"
mkdir -p "$bundle/prefix" "$bundle/shared"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The package owning a library path as ldd prints it (/lib/... on merged-usr Debian is registered
# as /usr/lib/... or the other way round).
owner() {
  local f=$1 r
  r=$(readlink -f "$f")
  for p in "$f" "/usr$f" "${f#/usr}" "$r" "/usr$r" "${r#/usr}"; do
    dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 && return 0
  done
  return 1
}
find_lib() {  # system path of a soname
  for d in /usr/lib/$multiarch /lib/$multiarch; do
    [[ -e $d/$1 ]] && { echo "$d/$1"; return 0; }
  done
  echo "gpu-bundle: $1 is not installed here (tools/install-deps.sh)" >&2
  return 1
}

runtime_packages=()
declare -A seen=()
for so in "${runtime_roots[@]}"; do
  lib=$(find_lib "$so")
  for f in "$lib" $(ldd "$lib" | awk '/=>/ && $3 ~ /^\// {print $3}'); do
    pkg=$(owner "$f") || { echo "gpu-bundle: no package owns $f" >&2; exit 1; }
    [[ $skip_packages == *" $pkg "* || -n ${seen[$pkg]:-} ]] && continue
    seen[$pkg]=1
    runtime_packages+=("$pkg")
  done
done

# Download (the apt cache first: same file, no network) and unpack.
mkdir -p "$work/debs"
for pkg in "${dev_packages[@]}" "${runtime_packages[@]}"; do
  ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
  [[ -n $ver ]] || ver=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
  [[ -n $ver && $ver != "(none)" ]] || { echo "gpu-bundle: no version of $pkg" >&2; exit 1; }
  a=$(dpkg-query -W -f='${Architecture}' "$pkg" 2>/dev/null || echo "$arch")
  # The installed version; else (a runtime library whose installed version left the archive)
  # the candidate one: same soname, and nothing here links against it.
  candidate=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
  deb=""
  for v in "$ver" "$candidate"; do
    f="${pkg}_${v//:/%3a}_${a}.deb"
    if [[ -f /var/cache/apt/archives/$f ]]; then
      cp "/var/cache/apt/archives/$f" "$work/debs/" && deb=$f && ver=$v && break
    fi
    if (cd "$work/debs" && apt-get download -q "$pkg=$v" >/dev/null 2>&1); then
      deb=$f && ver=$v && break
    fi
  done
  [[ -n $deb ]] || { echo "gpu-bundle: cannot download $pkg ($ver or $candidate; network?)" >&2; exit 1; }
  dpkg -x "$work/debs/$deb" "$bundle/prefix"
  printf '%s %s %s\n' package "$pkg" "$ver" >>"$work/manifest"
done

p=$bundle/prefix
# Merge /lib into /usr/lib (Debian 12 packages still ship some libraries under /lib; the dev
# symlinks in /usr/lib point at them by relative name).
if [[ -d $p/lib ]]; then
  cp -a "$p/lib/." "$p/usr/lib/"
  rm -rf "$p/lib"
fi
# Prune what neither the build nor the run needs: docs, man pages, static libraries other than
# GoogleTest's (prebuilt: the GPU machine need not compile it), HDF5's C++/Fortran/HL and
# parallel flavours, PCRE2's 16/32-bit and POSIX variants, programs other than pkgconf.
rm -rf "$p/usr/share/doc" "$p/usr/share/man" "$p/usr/share/lintian" "$p/usr/share/aclocal" \
       "$p/usr/share/bash-completion" "$p/usr/share/info" "$p/usr/src" "$p/etc" "$p/usr/share/locale"
find "$p" \( -name '*.a' ! -name 'libgtest*.a' \) -delete
find "$p" \( -name '*fortran*' -o -name '*hdf5*_cpp*' -o -name '*hdf5*_hl*' -o -name '*hdf5*hl_*' \
             -o -name '*.mod' -o -name 'libpcre2-16*' -o -name 'libpcre2-32*' \
             -o -name 'libpcre2-posix*' -o -name 'libpcre2-16.pc' -o -name 'libpcre2-32.pc' \) \
  -exec rm -rf {} +
rm -rf "$p/usr/include/hdf5/openmpi" "$p/usr/lib/$multiarch/hdf5/openmpi"
find "$p/usr/bin" -mindepth 1 ! -name pkgconf ! -name pkg-config -exec rm -rf {} + 2>/dev/null || true
# Absolute symlinks would point into the GPU machine's /usr: make them relative (/lib/... targets
# now live in /usr/lib/..., e.g. zlib1g-dev's libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13).
while IFS= read -r l; do
  t=$(readlink "$l")
  [[ $t == /* ]] || continue
  [[ $t == /lib/* ]] && t=/usr$t
  ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$p$t")" "$l"
done < <(find "$p" -type l)
find "$p" -xtype l -print -delete | sed 's/^/gpu-bundle: removed dangling link /'  # e.g. libhdf5_cpp.so
# pkg-config files name prefix=/usr: make them relative to their own folder.
while IFS= read -r pc; do
  rel=$(realpath -m --relative-to="$(dirname "$pc")" "$p/usr")
  sed -i "s|^prefix=/usr\$|prefix=\${pcfiledir}/$rel|" "$pc"
done < <(find "$p" -name '*.pc')
# CMake configs must not name /usr either (they locate themselves; checked, not patched). The
# exported-target files' "loaded through a /lib -> /usr/lib symlink" test names /usr harmlessly.
if grep -rE '"/usr/(lib|include)' "$p"/usr/lib/*/cmake "$p"/usr/share/cmake 2>/dev/null |
     grep -vE '_realOrig|set\(_IMPORT_PREFIX'; then
  echo "gpu-bundle: a CMake config above names an absolute /usr path" >&2
  exit 1
fi
for so in "${runtime_roots[@]}"; do
  [[ -e $p/usr/lib/$multiarch/$so ]] || { echo "gpu-bundle: $so missing from the bundle" >&2; exit 1; }
done
# Every shared library in the bundle, by its SONAME (as the loader asks for it): gpu-check.sh
# links in only those the machine lacks.
for f in "$p/usr/lib/$multiarch"/lib*.so.*; do
  [[ -f $f && ! -L $f ]] || continue
  so=$(objdump -p "$f" | awk '$1 == "SONAME" {print $2}')
  [[ -n $so && -e $p/usr/lib/$multiarch/$so ]] || { echo "gpu-bundle: no SONAME link for $f" >&2; exit 1; }
  echo "soname $so"
done | sort -u >>"$work/manifest"

# Data from ../shared (never into tracked files), laid out like ../shared.
copy_shared() {
  if [[ -f $shared/$1 ]]; then
    mkdir -p "$bundle/shared/$(dirname "$1")"
    cp "$shared/$1" "$bundle/shared/$1"
    chmod u+w "$bundle/shared/$1"
  else
    echo "gpu-bundle: $shared/$1 absent: the phases that need it will be skipped" >&2
  fi
}
copy_shared models/stories260K/stories260K.bin
copy_shared models/stories260K/tok512.bin
copy_shared data/sst2/validation.tsv
copy_shared data/triviaqa/questions_1000.jsonl
# Task configs whose data paths point into the bundle (paths resolve against the file's folder).
mkdir -p "$bundle/tasks"
for t in sst2 triviaqa; do
  sed -E 's|"path": *"(\.\./)+shared/|"path": "../shared/|' "configs/tasks/$t.json" \
    >"$bundle/tasks/$t.json"
  grep -q '"path": "../shared/' "$bundle/tasks/$t.json" ||
    { echo "gpu-bundle: could not rewrite the data path of configs/tasks/$t.json" >&2; exit 1; }
done
mkdir -p "$bundle/smollm2"
gzip -dc tests/fixtures/tokenizers/smollm2_gguf/vocab.gguf.gz >"$bundle/smollm2/vocab.gguf"

{
  echo "# npeff GPU bundle (tools/gpu-bundle.sh), made $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "multiarch $multiarch"
  cat "$work/manifest"
} >"$bundle/MANIFEST"
size_kib=$(du -sk "$bundle" | cut -f1)
echo "gpu-bundle: $bundle is $((size_kib / 1024)) MiB ($size_kib KiB): ${#dev_packages[@]} build packages," \
     "${#runtime_packages[@]} runtime packages, data $(du -sh "$bundle/shared" | cut -f1)"
if ((size_kib > limit_mib * 1024)); then
  echo "gpu-bundle: larger than $limit_mib MiB" >&2
  exit 1
fi
echo "carry: [\"$bundle\"]"
