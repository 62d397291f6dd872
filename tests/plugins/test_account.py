"""Accounting policies: initiator, kthread and split, called as the pipeline calls them."""

from __future__ import annotations

import pytest

from migpolicy.costs import CostTotals
from migpolicy.plugins import account

OWNED = {
    3: CostTotals(wall_s=2.0, cpu_s=5.0, engine_s=1.0, worker_s=3.0, bytes=300, folios=3),
    4: CostTotals(wall_s=1.0, cpu_s=2.5, engine_s=0.5, worker_s=1.5, bytes=100, folios=1),
}


def charge(pm, policy: str, owned=OWNED, initiator: int = 3) -> dict:
    return pm.hook.migpolicy_account(owned=owned, initiator=initiator,
                                     params={"account.policy": policy})


def test_initiator_pays_everything(pm) -> None:
    assert charge(pm, "initiator") == {"3": {"cpu_s": 7.5, "wall_s": 3.0, "engine_s": 1.5}}


def test_initiator_may_own_no_folio(pm) -> None:
    assert set(charge(pm, "initiator", initiator=9)) == {"9"}


def test_kthread_takes_the_worker_cpu_time(pm) -> None:
    charges = charge(pm, "kthread")
    assert charges["3"] == {"cpu_s": 3.0, "wall_s": 3.0, "engine_s": 1.5}
    assert charges["kthread"] == {"cpu_s": 4.5, "wall_s": 0.0, "engine_s": 0.0}


def test_kthread_initiator_pays_as_kthread(pm) -> None:
    charges = charge(pm, "kthread", initiator=-1)
    assert set(charges) == {"kthread"}
    assert charges["kthread"]["cpu_s"] == pytest.approx(7.5)
    assert charges["kthread"]["wall_s"] == 3.0


def test_kthread_without_workers_is_initiator(pm) -> None:
    owned = {0: CostTotals(wall_s=1.0, cpu_s=1.0, bytes=10, folios=1)}
    assert charge(pm, "kthread", owned, 0) == charge(pm, "initiator", owned, 0)


def test_split_charges_each_owner_its_share(pm) -> None:
    charges = charge(pm, "split")
    assert charges == {
        "3": {"cpu_s": 5.0, "wall_s": 2.0, "engine_s": 1.0},
        "4": {"cpu_s": 2.5, "wall_s": 1.0, "engine_s": 0.5},
    }


def test_split_kernel_owned_folios_go_to_kthread(pm) -> None:
    owned = {-1: CostTotals(wall_s=1.0, cpu_s=2.0, bytes=10, folios=1), **OWNED}
    assert set(charge(pm, "split", owned)) == {"kthread", "3", "4"}


@pytest.mark.parametrize("policy", account.POLICIES)
def test_every_policy_conserves_cpu_and_engine_time(pm, policy: str) -> None:
    charges = charge(pm, policy)
    assert sum(c["cpu_s"] for c in charges.values()) == pytest.approx(7.5)
    assert sum(c["engine_s"] for c in charges.values()) == pytest.approx(1.5)
    for payer in charges.values():
        assert set(payer) == {"cpu_s", "wall_s", "engine_s"}


def test_empty_migration(pm) -> None:
    assert charge(pm, "initiator", {}) == {"3": {"cpu_s": 0, "wall_s": 0, "engine_s": 0}}
    assert charge(pm, "split", {}) == {}


def test_policy_is_a_declared_choice(pm) -> None:
    from migpolicy.context import declared_parameters

    (policy,) = [p for p in declared_parameters(pm) if p.name == "account.policy"]
    assert policy.kind == "choice" and set(policy.choices) == {"initiator", "kthread", "split"}
    assert policy.default == "initiator"


def test_a_plugin_can_override_accounting(pm, ctx_for) -> None:
    from migpolicy.folios import make_folios
    from migpolicy.hookspecs import hookimpl
    from migpolicy.pipeline import run_pipeline

    class Flat:
        @hookimpl
        def migpolicy_account(self, owned):
            return {"everyone": {"cpu_s": 1.0, "wall_s": 1.0, "engine_s": 0.0}}

    pm.register(Flat(), name="flat")
    ctx = ctx_for()
    report = run_pipeline(pm, make_folios(4096, 10), ctx.hw, ctx.params)
    assert report.accounting == {"everyone": {"cpu_s": 1.0, "wall_s": 1.0, "engine_s": 0.0}}
