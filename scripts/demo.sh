#!/usr/bin/env bash
# The main job on bundled data: commit two versions of a tree, check one out, show log and diff;
# then publish them (signed summary, static delta) and pull them into a second repository;
# then compose an OS tree from RPMs built from fixtures/compose and deploy it into a sysroot (as root).
# Installs what is missing first (scripts/setup.sh). Works as root or as a normal user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npm run --silent build

work=$(mktemp -d "${TMPDIR:-/var/tmp}/arbor-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
arbor() { echo "\$ arbor $*" >&2; node bin/arbor.js "$@"; }

arbor init --repo "$work/repo" --mode bare-user
v1=$(arbor commit --repo "$work/repo" -b demo/x86_64/stable -s "Demo 1.0" --add-metadata version=1.0 \
  --owner-uid 0 --owner-gid 0 --tree dir=fixtures/demo/v1)
v2=$(arbor commit --repo "$work/repo" -b demo/x86_64/stable -s "Demo 1.1" --add-metadata version=1.1 \
  --owner-uid 0 --owner-gid 0 --tree dir=fixtures/demo/v2)
echo "committed 1.0 as $v1 and 1.1 as $v2"
arbor log --repo "$work/repo" demo/x86_64/stable
arbor diff --repo "$work/repo" demo/x86_64/stable^ demo/x86_64/stable
arbor diff --repo "$work/repo" --stat demo/x86_64/stable^ demo/x86_64/stable
arbor ls --repo "$work/repo" -R demo/x86_64/stable /usr
arbor checkout --repo "$work/repo" --user-mode demo/x86_64/stable "$work/checkout"
echo "checked out into $work/checkout:"; "$work/checkout/usr/bin/hello"
arbor cat --repo "$work/repo" "${v1:0:8}" /usr/etc/os-release
arbor fsck --repo "$work/repo"

# Publishing: an archive repository a web server can serve, a signed summary and a static delta;
# then a "host" repository pulls 1.0, and 1.1 through the delta, verifying signatures.
arbor keygen --output "$work/release"
arbor init --repo "$work/served" --mode archive
arbor pull-local --repo "$work/served" "$work/repo" demo/x86_64/stable --depth 1
arbor sign --repo "$work/served" demo/x86_64/stable --keyfile "$work/release.key"
arbor sign --repo "$work/served" demo/x86_64/stable^ --keyfile "$work/release.key"
arbor static-delta generate --repo "$work/served" --to demo/x86_64/stable
arbor summary --repo "$work/served" --update --sign "$work/release.key"
arbor init --repo "$work/host" --mode bare-user
arbor remote add --repo "$work/host" origin "$work/served" --sign-verify=ed25519="$work/release.pub"
arbor pull --repo "$work/host" origin "$v1"
arbor refs --repo "$work/host" --create origin:demo/x86_64/stable "$v1"
arbor pull --repo "$work/host" origin demo/x86_64/stable
arbor fsck --repo "$work/host"

# Compose: RPMs built from fixtures/compose with rpmbuild, a yum repository from createrepo_c, and
# an OS commit from a treefile (resolve, import, scriptlets in a sandbox, rpm database, /usr/etc).
if [ "$(id -u)" = 0 ]; then
  for spec in fixtures/compose/*.spec; do
    rpmbuild -bb --quiet --define "_topdir $work/rpmbuild" --define "_rpmdir $work/rpms" \
      --define '_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm' "$spec"
  done
  createrepo_c --quiet "$work/rpms"
  printf 'include: %s\nrepos: [%s]\n' "$PWD/fixtures/compose/demo.yaml" "$work/rpms" > "$work/os.yaml"
  arbor init --repo "$work/compose" --mode bare
  arbor compose tree --repo "$work/compose" --dry-run "$work/os.yaml"
  arbor compose tree --repo "$work/compose" "$work/os.yaml"
  arbor compose tree --repo "$work/compose" --unless-changed "$work/os.yaml"
  arbor db list --repo "$work/compose" demo/x86_64/os
  arbor cat --repo "$work/compose" demo/x86_64/os /usr/etc/hello/installed-by
  arbor ls --repo "$work/compose" demo/x86_64/os /usr/etc/systemd/system/multi-user.target.wants

  # Deploy: a sysroot in a directory, the composed commit deployed, an admin edit in /etc, an
  # upgrade that keeps it (3-way /etc merge), and a rollback (one atomic swap of the boot entries).
  arbor admin init-fs "$work/sysroot"
  arbor admin os-init --sysroot "$work/sysroot" demo
  arbor pull-local --repo "$work/sysroot/arbor/repo" "$work/compose" demo/x86_64/os
  arbor admin deploy --sysroot "$work/sysroot" --stateroot demo --karg root=LABEL=root --karg quiet demo/x86_64/os
  deployment=$(ls -d "$work"/sysroot/arbor/deploy/demo/deploy/*.0)
  echo 'GREETING="Hello from the admin"' > "$deployment/etc/hello/hello.conf"
  arbor admin config-diff --sysroot "$work/sysroot"
  printf 'version: "2"\n' >> "$work/os.yaml"
  arbor compose tree --repo "$work/compose" "$work/os.yaml"
  arbor pull-local --repo "$work/sysroot/arbor/repo" "$work/compose" demo/x86_64/os
  arbor upgrade --sysroot "$work/sysroot"
  arbor status --sysroot "$work/sysroot"
  cat "$work"/sysroot/boot/loader/entries/*.conf
  arbor rollback --sysroot "$work/sysroot"
  arbor status --sysroot "$work/sysroot"
else
  echo "(compose skipped: scriptlets run in a sandbox that needs root)"
fi
