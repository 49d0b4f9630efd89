#!/usr/bin/env bash
# Installs what Arbor and its tests need on a fresh Debian machine: system packages (when missing,
# through apt-get; needs root), the npm dependencies (npm install) and Arbor's own native addon
# (build/, not tracked: node-gyp rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."

# command → Debian package providing it
declare -A NEED=(
  [ostree]=ostree             # the reference tool in benchmarks and tests
  [getfattr]=attr             # xattr listings in tests
  [setcap]=libcap2-bin        # file capabilities in test trees
  [/usr/bin/time]=time        # peak RSS in benchmarks
  [setpriv]=util-linux        # running the CLI unprivileged in tests
  [tar]=tar
  [python3]=python3           # the benchmark tree generator
  [rpmbuild]=rpm              # builds the RPM fixtures (fixtures/rpm/*.spec) at test time
  [rpm2cpio]=rpm2cpio         # reference extraction in RPM tests
  [cpio]=cpio
  [rpmsign]=rpm               # signs packages in signature tests (rpmkeys -K is their reference)
  [gpg]=gpg                   # makes the signing keys in signature tests
  [gpg-agent]=gpg-agent       # holds the keys gpg makes (rpmsign signs through it)
  [gpgv]=gpgv                 # the reference for repomd.xml.asc checks
  [createrepo_c]=createrepo-c  # makes the yum repositories (repodata/) that repodata tests read
  [nginx]=nginx-light         # serves archive repositories over HTTP in pull tests and benchmarks
  [dnf]=dnf                   # the reference depsolver in solve tests
  [bwrap]=bubblewrap          # the sandbox compose runs scriptlets in
  [unshare]=util-linux        # the sandbox's private mount namespace (its overlay lives there)
  [busybox]=busybox-static    # a static /bin/sh for test trees whose scriptlets run in the sandbox
  [grub-script-check]=grub-common  # syntax check of generated grub.cfg (src/bootloader tests)
  [grub-emu]=grub-emu         # runs generated grub.cfg and its grubenv boot counter in userspace
  # QEMU boot tests (test/support/{kernel,boot-tree,boot-image,qemu}.ts); the kernel itself is
  # fetched at test time with apt-get download into /var/tmp/arbor-test-cache/kernel
  [qemu-system-x86_64]=qemu-system-x86
  [/usr/share/ovmf/OVMF.fd]=ovmf                                             # UEFI firmware
  [/usr/lib/systemd/boot/efi/systemd-bootx64.efi]=systemd-boot-efi           # the ESP's BOOTX64.EFI
  [grub-mkimage]=grub-common
  [/usr/lib/grub/i386-pc/boot.img]=grub-pc-bin                               # BIOS GRUB images and modules
  [mcopy]=mtools              # fills and reads the ESP without mounting it
  [mkfs.vfat]=dosfstools
  [mkfs.ext4]=e2fsprogs       # root images (mkfs.ext4 -d)
  [mkfs.xfs]=xfsprogs         # xfs root images (--root-fs xfs; the reference OS's BIOS image in os-e2e)
  [sfdisk]=fdisk              # GPT disk images
  [qemu-img]=qemu-utils       # arbor image build --format qcow2
  [depmod]=kmod               # module load order for the test initramfs
  [systemd-analyze]=systemd   # checks the shipped units (data/systemd) with systemd-analyze verify
  [shellcheck]=shellcheck     # npm run lint: the shell scripts in data/ and scripts/
  [etcd]=etcd-server          # the FleetLock server's store (fleet tests start their own cluster)
  [etcdctl]=etcd-client       # the fleet tests' independent observer cross-checks with it
  # The reference OS (examples/os): its RPMs are made from these installed packages, and dracut
  # runs inside the composed tree; the kernel comes from apt-get download, like the boot tests'
  [dracut]=dracut
  [/lib/systemd/systemd-udevd]=udev
)
missing=()
for cmd in "${!NEED[@]}"; do
  case $cmd in
    /*) [ -e "$cmd" ] ;;                     # a file the package installs (firmware, EFI or GRUB images)
    *) command -v "$cmd" >/dev/null 2>&1 ;;
  esac || missing+=("${NEED[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Skipped when node_modules matches the lockfile already (the marker npm writes). `npm install`, not
# `npm ci`: npm 11.19 writes lockfiles without the other platforms' optional packages of
# @napi-rs/blake-hash and then its own `npm ci` refuses them as out of sync (seen here, even for a
# one-dependency project). With the lockfile present, `npm install` installs the locked versions.
# `npm install` also runs our own `install` script (node-gyp rebuild). With node_modules current
# (a fresh clone beside an existing node_modules, or a worktree sharing one) only the addon is
# missing: build it alone rather than let npm touch node_modules.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund
elif [ ! -f build/Release/arbor_native.node ]; then
  npm run install
fi
