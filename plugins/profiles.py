"""Registers the shipped hardware profiles and the user's own profile directory.

Shipped: ``zen3-epyc-ptdma`` (the RFC platform, fitted to the V3 kernel's tables),
``zen3-epyc-ptdma-6.14`` (its V2 fit), ``spr-dsa``, ``gh200``, ``dram-cxl`` and
``local`` (this machine; ``migpolicy hw calibrate`` writes a measured one into
the user directory, ``$MIGPOLICY_PROFILE_DIR`` or ``~/.config/migpolicy/profiles``,
which takes precedence over a shipped profile of the same name).
"""

from __future__ import annotations

from migpolicy.contract import hookimpl
from migpolicy.hardware.locations import shipped_dir, user_dir


@hookimpl
def migpolicy_hardware_profiles():
    paths = sorted(str(p) for p in shipped_dir().glob("*.yaml"))
    user = user_dir()
    if user.is_dir():
        paths += sorted(str(p) for p in user.glob("*.yaml"))
    return paths
