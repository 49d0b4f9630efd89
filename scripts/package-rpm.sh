#!/usr/bin/env bash
# Builds Arbor as RPM packages for the OS trees it manages: `arbor` (the compiled CLI with its
# production node_modules and native addons, /usr/bin/arbor, the systemd units, the health runner,
# the dracut module and the initramfs pieces) and, unless --no-node, `nodejs` (the Node runtime
# taken from the installed Debian package, for OS trees no other RPM gives Node to). rpmbuild's own
# dependency generators list what the packages need (ELF sonames, script interpreters).
#
#   scripts/package-rpm.sh [--out DIR] [--no-node]          (npm run package:rpm -- ...)
#
# Reproducible: files and build time are clamped to SOURCE_DATE_EPOCH (default: the time of the
# checkout's last commit), so the same checkout gives the same packages.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

out=$ROOT/dist-rpm
with_node=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --no-node) with_node=0; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package-rpm: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for tool in rpmbuild dpkg-query npm; do
  command -v "$tool" >/dev/null || { echo "package-rpm: '$tool' is needed (Debian packages rpm, dpkg, npm)" >&2; exit 1; }
done

: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
# Fedora's payload; ARBOR_RPM_PAYLOAD=w3.zstdio builds faster (tests use it).
payload=${ARBOR_RPM_PAYLOAD:-w19.zstdio}
version=$(node -p 'require("./package.json").version')
node_range=$(node -p 'require("./package.json").engines.node.replace(/^>=\s*/, "")')

work=$(mktemp -d "${TMPDIR:-/var/tmp}/arbor-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# rpmbuild SPEC → $out/NAME-VERSION-RELEASE.ARCH.rpm, with the stage directory as the build root.
build() {
  local spec=$1
  HOME=/nonexistent rpmbuild -bb --quiet \
    --define "_topdir $work/top" \
    --define "_rpmdir $out" \
    --define '_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm' \
    --define "_binary_payload $payload" \
    --define '__os_install_post %{nil}' \
    --define 'debug_package %{nil}' \
    --define '_build_id_links none' \
    --define '_buildhost arbor-build' \
    --define 'use_source_date_epoch_as_buildtime 1' \
    --define 'clamp_mtime_to_source_epoch 1' \
    "$spec"
}

# --- arbor --------------------------------------------------------------------------------------
echo "package-rpm: building arbor $version" >&2
# Compiled and bundled into the work directory, never into ./dist: a test suite running from ./dist at
# the same time must not see it deleted and rebuilt under it. The bundler resolves the libraries it
# bundles from the compiled files' location, hence the link to ./node_modules.
npx tsc -p tsconfig.json --outDir "$work/dist" --sourceMap false
ln -s "$ROOT/node_modules" "$work/node_modules"
ARBOR_BUNDLE_DIST=$work/dist npx rolldown -c rolldown.config.ts --log-level warn >&2
stage=$work/arbor
app=$stage/usr/lib/arbor/app
mkdir -p "$app/bin" "$app/dist" "$app/build/Release" "$stage/usr/bin" "$stage/usr/lib/arbor/health.d" \
  "$stage/usr/lib/systemd/system" "$stage/usr/lib/dracut/modules.d" "$stage/usr/share/doc/arbor"
# What bin/arbor.js runs: the bundle (no tests, benchmarks or source maps).
cp -a "$work/dist/cli" "$app/dist/cli"
cp bin/arbor.js "$app/bin/arbor.js"
cp package.json package-lock.json "$app/"
cp build/Release/arbor_native.node "$app/build/Release/"
# Production dependencies: a copy of node_modules pruned of dev dependencies, without build
# intermediates, bundled C sources and prebuilt binaries for other systems.
cp -a node_modules "$app/node_modules"
(cd "$app" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --silent)
find "$app/node_modules" \( -path '*/build/Release/obj*' -o -path '*/build/Release/.deps' -o -name '*.a' \
  -o -name 'test_extension.node' \) -prune -exec rm -rf {} +
# node-gyp-build loads build/Release before prebuilds/: where an addon was built here, its prebuilt
# binaries (other systems', and a musl one) would only be dead weight with false dependencies.
for release in "$app"/node_modules/*/build/Release "$app"/node_modules/@*/*/build/Release; do
  if compgen -G "$release/*.node" >/dev/null; then rm -rf "${release%/build/Release}/prebuilds"; fi
done
# Addons for the Bare runtime (optional dependencies of tar-stream's streams), never loaded by Node;
# and caches tools leave in node_modules.
find "$app/node_modules" -name '*.bare' -delete
find "$app/node_modules" -depth -type d -empty -delete
rm -rf "$app/node_modules/.vite" "$app/node_modules/.cache"
rm -rf "$app/node_modules/better-sqlite3/deps" "$app/node_modules/better-sqlite3/src" "$app/node_modules/.package-lock.json"
rm "$app/package-lock.json"
ln -s ../lib/arbor/app/bin/arbor.js "$stage/usr/bin/arbor"
install -m 0755 data/health/arbor-health data/initramfs/arbor-prepare-root "$stage/usr/lib/arbor/"
install -m 0644 data/systemd/*.service data/systemd/*.timer data/systemd/*.path "$stage/usr/lib/systemd/system/"
cp -a data/dracut/50arbor "$stage/usr/lib/dracut/modules.d/"
# Read by `arbor` itself when it writes a first-boot configuration into a deployment.
mkdir -p "$app/data"
cp -a data/firstboot "$app/data/"
cp README.md docs/*.md "$stage/usr/share/doc/arbor/"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

cat >"$work/arbor.spec" <<EOF
Name: arbor
Version: $version
Release: 1
Summary: Atomic OS tree manager: content-addressed trees, deployments, upgrades and rollback
License: MIT
Requires: nodejs >= $node_range
# Scriptlets of layered packages run in the compose sandbox: bubblewrap, util-linux's unshare and mount.
Requires: bubblewrap
Requires: /usr/bin/unshare
Requires: /usr/bin/mount
BuildArch: x86_64

%description
Arbor stores OS trees in a content-addressed repository, composes RPM packages into commits, pulls
them over HTTP with static deltas and signatures, and deploys them as bootable deployments that
upgrade and roll back atomically, with trial boots checked by health checks.

%install
cp -a $stage/. %{buildroot}/

%files
/usr/bin/arbor
/usr/lib/arbor
/usr/lib/systemd/system/arbor-*.service
/usr/lib/systemd/system/arbor-*.timer
/usr/lib/systemd/system/arbor-*.path
/usr/lib/dracut/modules.d/50arbor
%doc /usr/share/doc/arbor
EOF
build "$work/arbor.spec"
echo "$out/arbor-$version-1.x86_64.rpm"

# --- nodejs -------------------------------------------------------------------------------------
[ "$with_node" = 1 ] || exit 0
node_bin=$(command -v node)
deb=$(dpkg-query -S "$(readlink -f "$node_bin")" 2>/dev/null | cut -d: -f1) || true
[ -n "$deb" ] || { echo "package-rpm: $node_bin belongs to no Debian package; use --no-node" >&2; exit 1; }
deb_version=$(dpkg-query -W -f '${Version}' "$deb")
node_version=$(node -p 'process.versions.node')
echo "package-rpm: building nodejs $node_version from Debian's $deb $deb_version" >&2
nstage=$work/nodejs
install -D -m 0755 "$(readlink -f "$node_bin")" "$nstage/usr/bin/node"
copyright=/usr/share/doc/$deb/copyright
[ -f "$copyright" ] && install -D -m 0644 "$copyright" "$nstage/usr/share/licenses/nodejs/copyright"
find "$nstage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
cat >"$work/nodejs.spec" <<EOF
Name: nodejs
Version: $node_version
Release: 1.deb
Summary: The Node.js runtime, from Debian's $deb $deb_version
License: MIT
URL: https://nodejs.org/
Provides: /usr/bin/node
BuildArch: x86_64

%description
The node binary of Debian's $deb package $deb_version, repackaged as an RPM for OS trees
composed with Arbor (the runtime only: no npm, headers or documentation).

%install
cp -a $nstage/. %{buildroot}/

%files
/usr/bin/node
$([ -f "$copyright" ] && echo '%license /usr/share/licenses/nodejs')
EOF
build "$work/nodejs.spec"
echo "$out/nodejs-$node_version-1.deb.x86_64.rpm"
