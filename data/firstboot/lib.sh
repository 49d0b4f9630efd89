# shellcheck shell=sh
# The functions of Arbor's first-boot script. `arbor` writes them, followed by one `step` line per
# configured change, into /etc/arbor/firstboot/apply (docs/firstboot.md), which arbor-firstboot.service
# runs once, before sysinit.target. POSIX sh and coreutils only: no Node, no NSS (names resolve
# against the tree's own /etc/passwd and /etc/group, so the script also works on a tree mounted
# elsewhere, with ARBOR_FIRSTBOOT_ROOT naming it). Every step can run again with the same result.

root=${ARBOR_FIRSTBOOT_ROOT:-}
state=$root/etc/arbor/firstboot
steps=0
umask 022

# step NAME FUNCTION ARGS...: runs one change in a subshell with -e, its output kept; the first that
# fails is recorded in $state/result (and its output in $state/failed-step.log) and ends the run.
step() {
  step_name=$1
  shift
  steps=$((steps + 1))
  (
    set -e
    "$@"
  ) >"$state/step.log" 2>&1
  step_rc=$?
  [ "$step_rc" -eq 0 ] && return 0
  tail -c 65536 "$state/step.log" >"$state/failed-step.log"
  rm -f "$state/step.log"
  write_result "status=failed" "step=$step_name" "exit=$step_rc" "steps=$((steps - 1))"
  echo "arbor-firstboot: step '$step_name' failed (exit $step_rc):" >&2
  cat "$state/failed-step.log" >&2
  exit 1
}

# finish: records success; the generator and the unit see `done` and never run the script again.
finish() {
  rm -f "$state/step.log" "$state/failed-step.log"
  write_result "status=applied" "steps=$steps"
  : >"$state/done"
  sync_all
  echo "arbor-firstboot: applied $steps steps"
}

write_result() {
  {
    printf 'time=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for line in "$@"; do printf '%s\n' "$line"; done
  } >"$state/result.tmp"
  mv -f "$state/result.tmp" "$state/result"
}

sync_all() {
  sync 2>/dev/null || true
}

# rewrite FILE AWK-ARGS...: FILE replaced atomically by what awk makes of it, keeping its mode and owner
# (the copy made first carries them; writing into it keeps them).
rewrite() {
  rewrite_file=$1
  shift
  cp -p "$rewrite_file" "$rewrite_file.tmp"
  awk "$@" "$rewrite_file" >"$rewrite_file.tmp"
  mv -f "$rewrite_file.tmp" "$rewrite_file"
}

# id_of FILE NAME: the numeric id of NAME in a passwd or group FILE; a number is its own id.
id_of() {
  case $2 in
    *[!0-9]*) ;;
    *)
      echo "$2"
      return 0
      ;;
  esac
  id=$(awk -F: -v n="$2" '$1 == n { print $3; exit }' "$1")
  if [ -z "$id" ]; then
    echo "no entry '$2' in ${1#"$root"}" >&2
    return 1
  fi
  echo "$id"
}

# free_id FILE...: the lowest id from 1000 used by none of the files (passwd and group share the count).
free_id() {
  awk -F: '{ used[$3] = 1 } END { for (i = 1000; i in used; i++); print i }' "$@"
}

has_entry() {
  grep -q "^$2:" "$1" 2>/dev/null
}

set_hostname() {
  printf '%s\n' "$1" >"$root/etc/hostname.tmp"
  mv -f "$root/etc/hostname.tmp" "$root/etc/hostname"
  if [ -z "$root" ] && [ -w /proc/sys/kernel/hostname ]; then
    printf '%s' "$1" >/proc/sys/kernel/hostname
  fi
}

# ensure_group NAME GID|'': adds the group unless it exists (with any gid).
ensure_group() {
  has_entry "$root/etc/group" "$1" && return 0
  gid=${2:-$(free_id "$root/etc/group" "$root/etc/passwd")}
  if awk -F: -v g="$gid" '$3 == g { found = 1 } END { exit !found }' "$root/etc/group"; then
    echo "gid $gid is taken by another group" >&2
    return 1
  fi
  printf '%s:x:%s:\n' "$1" "$gid" >>"$root/etc/group"
  if [ -f "$root/etc/gshadow" ]; then printf '%s:!::\n' "$1" >>"$root/etc/gshadow"; fi
}

# add_member GROUP USER: appends USER to GROUP's member list unless it is there.
add_member() {
  has_entry "$root/etc/group" "$1" || {
    echo "group '$1' does not exist" >&2
    return 1
  }
  # shellcheck disable=SC2016 # an awk program: its $ are awk's
  rewrite "$root/etc/group" -F: -v OFS=: -v g="$1" -v u="$2" '
    $1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) { print; next }
              $4 = ($4 == "" ? u : $4 "," u) }
    { print }'
}

# ensure_user NAME UID|'' GECOS HOME SHELL GROUPS(comma-separated) HASH|'': adds the user with a group of
# its own name unless the user exists; then its groups and password hash are made what the config says.
ensure_user() {
  name=$1 uid=$2 gecos=$3 home=$4 shell=$5 groups=$6 hash=$7
  if ! has_entry "$root/etc/passwd" "$name"; then
    uid=${uid:-$(free_id "$root/etc/passwd" "$root/etc/group")}
    if awk -F: -v u="$uid" '$3 == u { found = 1 } END { exit !found }' "$root/etc/passwd"; then
      echo "uid $uid is taken by another user" >&2
      return 1
    fi
    if ! has_entry "$root/etc/group" "$name"; then
      gid=$uid
      awk -F: -v g="$gid" '$3 == g { found = 1 } END { exit !found }' "$root/etc/group" &&
        gid=$(free_id "$root/etc/group" "$root/etc/passwd")
      ensure_group "$name" "$gid"
    fi
    gid=$(id_of "$root/etc/group" "$name")
    printf '%s:x:%s:%s:%s:%s:%s\n' "$name" "$uid" "$gid" "$gecos" "$home" "$shell" >>"$root/etc/passwd"
    if [ -f "$root/etc/shadow" ]; then
      printf '%s:!:%s:0:99999:7:::\n' "$name" "$(($(date +%s) / 86400))" >>"$root/etc/shadow"
    fi
    mkdir -p "$root$home"
    chown "$uid:$gid" "$root$home"
    chmod 0700 "$root$home"
  fi
  old_ifs=$IFS
  IFS=,
  for group in $groups; do add_member "$group" "$name"; done
  IFS=$old_ifs
  if [ -n "$hash" ]; then
    [ -f "$root/etc/shadow" ] || {
      echo "the tree has no /etc/shadow to hold the password of '$name'" >&2
      return 1
    }
    # shellcheck disable=SC2016 # an awk program: its $ are awk's
    rewrite "$root/etc/shadow" -F: -v OFS=: -v n="$name" -v h="$hash" '$1 == n { $2 = h } { print }'
  fi
}

# authorized_keys USER KEY...: ~USER/.ssh/authorized_keys holds exactly these keys.
authorized_keys() {
  user=$1
  shift
  home=$(awk -F: -v n="$user" '$1 == n { print $6; exit }' "$root/etc/passwd")
  [ -n "$home" ] || {
    echo "no user '$user'" >&2
    return 1
  }
  uid=$(id_of "$root/etc/passwd" "$user")
  gid=$(awk -F: -v n="$user" '$1 == n { print $4; exit }' "$root/etc/passwd")
  mkdir -p "$root$home/.ssh"
  chown "$uid:$gid" "$root$home/.ssh"
  chmod 0700 "$root$home/.ssh"
  printf '%s\n' "$@" >"$root$home/.ssh/authorized_keys.tmp"
  chown "$uid:$gid" "$root$home/.ssh/authorized_keys.tmp"
  chmod 0600 "$root$home/.ssh/authorized_keys.tmp"
  mv -f "$root$home/.ssh/authorized_keys.tmp" "$root$home/.ssh/authorized_keys"
}

# write_file PATH MODE OWNER GROUP CONTENTS: the file holds CONTENTS exactly, replaced atomically.
write_file() {
  uid=$(id_of "$root/etc/passwd" "$3")
  gid=$(id_of "$root/etc/group" "$4")
  mkdir -p "$(dirname "$root$1")"
  printf '%s' "$5" >"$root$1.arbor-tmp"
  chown "$uid:$gid" "$root$1.arbor-tmp"
  chmod "$2" "$root$1.arbor-tmp"
  mv -f "$root$1.arbor-tmp" "$root$1"
}

# make_dir PATH MODE OWNER GROUP
make_dir() {
  uid=$(id_of "$root/etc/passwd" "$3")
  gid=$(id_of "$root/etc/group" "$4")
  mkdir -p "$root$1"
  chown "$uid:$gid" "$root$1"
  chmod "$2" "$root$1"
}

# unit_file NAME: installs the unit file the configuration gave (kept in $state/units.d) in /etc.
unit_file() {
  mkdir -p "$root/etc/systemd/system"
  cp "$state/units.d/$1" "$root/etc/systemd/system/$1.tmp"
  chmod 0644 "$root/etc/systemd/system/$1.tmp"
  mv -f "$root/etc/systemd/system/$1.tmp" "$root/etc/systemd/system/$1"
}

# link_unit DIR NAME TARGET: DIR/NAME -> TARGET under /etc/systemd/system (DIR like multi-user.target.wants).
link_unit() {
  mkdir -p "$root/etc/systemd/system/$1"
  ln -sfn "$3" "$root/etc/systemd/system/$1/$2"
}

# mask_unit NAME
mask_unit() {
  mkdir -p "$root/etc/systemd/system"
  ln -sfn /dev/null "$root/etc/systemd/system/$1"
}
