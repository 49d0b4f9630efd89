#!/bin/sh
# dracut pre-pivot hook (sourced by dracut's init, so no `exit`): with an `arbor=` kernel argument,
# replace the physical root mounted at $NEWROOT by the deployment it names, the physical root
# moving to $NEWROOT/sysroot (docs/deploy.md). Without the argument this is not an Arbor boot.
# shellcheck source=/dev/null # dracut's library, present in the initramfs only
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

if arbor_arg=$(getarg arbor=) && [ -n "$arbor_arg" ]; then
    # getarg also honours /etc/cmdline.d; hand its answer over instead of re-reading /proc/cmdline.
    ARBOR_CMDLINE="arbor=$arbor_arg" /usr/lib/arbor/arbor-prepare-root "$NEWROOT" "$NEWROOT" ||
        die "arbor: cannot prepare the deployment arbor=$arbor_arg"
fi
unset arbor_arg
