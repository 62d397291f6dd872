"""Registers the shipped hardware profiles and the user's own profile directory.

Shipped: ``zen3-epyc-ptdma`` (the RFC V2 platform), ``gh200``, ``dram-cxl`` and
``local`` (this machine; ``migpolicy hw calibrate`` writes a measured one into
the user directory, ``$MIGPOLICY_PROFILE_DIR`` or ``~/.config/migpolicy/profiles``,
which takes precedence over a shipped profile of the same name).
"""

from __future__ import annotations

import os
from pathlib import Path

from migpolicy.hookspecs import hookimpl


def shipped_dir() -> Path:
    """The directory of the profiles that ship with migpolicy."""
    from migpolicy import hardware

    return Path(hardware.__file__).resolve().parent / "profiles"


def user_dir() -> Path:
    """Where calibrated and fitted profiles of this user live."""
    env = os.environ.get("MIGPOLICY_PROFILE_DIR")
    if env:
        return Path(env)
    return Path.home() / ".config" / "migpolicy" / "profiles"


@hookimpl
def migpolicy_hardware_profiles():
    paths = sorted(str(p) for p in shipped_dir().glob("*.yaml"))
    user = user_dir()
    if user.is_dir():
        paths += sorted(str(p) for p in user.glob("*.yaml"))
    return paths
