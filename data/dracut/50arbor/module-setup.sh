#!/bin/bash
# dracut module "arbor": installs arbor-prepare-root and a pre-pivot hook that makes the deployment
# named by the `arbor=` kernel argument the new root ($NEWROOT), like ostree's dracut module.
# Installed as /usr/lib/dracut/modules.d/50arbor/; the OS tree ships /usr/lib/arbor/arbor-prepare-root
# (data/initramfs/arbor-prepare-root). Build with `dracut --add arbor`.

# called by dracut
check() {
    require_binaries /usr/lib/arbor/arbor-prepare-root || return 1
    # Optional, as ostree's: included only when asked for (--add arbor) or depended on.
    return 255
}

# called by dracut
depends() {
    return 0
}

# called by dracut
install() {
    inst_multiple readlink mount mkdir rmdir cat
    inst_script /usr/lib/arbor/arbor-prepare-root
    # Early in pre-pivot, so later hooks see the deployment at $NEWROOT. Under the systemd module
    # the hook runs from dracut-pre-pivot.service, before initrd-switch-root moves $NEWROOT to /.
    # shellcheck disable=SC2154 # dracut sets moddir to this module's directory
    inst_hook pre-pivot 10 "$moddir/arbor-pre-pivot.sh"
}
