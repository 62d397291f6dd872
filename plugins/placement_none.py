"""The ``none`` placement policy (never migrate: the baseline) and the policy selectors.

Declares the parameters that choose the policies of a replay: ``placement``
(the promotion policy) and ``placement.demotion`` (a demotion policy working
beside it, or ``none``). Their choices are every policy the plugins register.
"""

from __future__ import annotations

from migpolicy.contract import Parameter, PlacementPolicy, PlacementPolicyInfo, hookimpl

PARAMETERS = (
    Parameter("placement", "none", "choice", "placement (promotion) policy of a replay; see "
              "`migpolicy plugins`", registry="placement"),
    Parameter("placement.demotion", "none", "choice", "demotion policy working beside the "
              "placement policy, or none", registry="demotion"),
)


class NoMigration(PlacementPolicy):
    """Never proposes a migration: every page stays where it was first placed."""


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


@hookimpl
def migpolicy_placement_policies():
    return (PlacementPolicyInfo(name="none", summary="never migrate (the baseline)",
                                factory=NoMigration),)
