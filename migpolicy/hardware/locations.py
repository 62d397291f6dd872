"""Where hardware profiles live: shipped with migpolicy, and the user's own directory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shipped_dir", "user_dir"]


def shipped_dir() -> Path:
    """The directory of the profiles that ship with migpolicy."""
    return Path(__file__).resolve().parent / "profiles"


def user_dir() -> Path:
    """Where calibrated and fitted profiles of this user live.

    ``$MIGPOLICY_PROFILE_DIR``, or ``~/.config/migpolicy/profiles``.
    """
    env = os.environ.get("MIGPOLICY_PROFILE_DIR")
    if env:
        return Path(env)
    return Path.home() / ".config" / "migpolicy" / "profiles"
