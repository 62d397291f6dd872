"""Accounting policies: who pays for a migration (seed point 3: cgroup fairness, attribution).

``account.policy`` picks one:

* ``initiator`` — the task that started the migration pays everything,
  including the worker threads it woke (the kernel today);
* ``kthread`` — the initiator pays its own CPU time; worker-thread CPU time is
  charged to kernel threads (payer ``kthread``), outside any tenant;
* ``split`` — every cost is shared among the tenants owning the folios,
  proportionally to their bytes.

Offload-engine time (DMA, GPU) is reported as ``engine_s``, never as CPU time.
"""

from __future__ import annotations

from migpolicy.contract import NoKernelEquivalent, Parameter, hookimpl

POLICIES = ("initiator", "kthread", "split")

PARAMETERS = (
    Parameter("account.policy", "initiator", "choice", "who pays: initiator, kthread or split",
              choices=POLICIES, tunable=False),
)


@hookimpl
def migpolicy_parameters():
    return PARAMETERS


def _payer(tenant: int) -> str:
    return "kthread" if tenant < 0 else str(tenant)


@hookimpl(trylast=True)
def migpolicy_account(owned, initiator, params):
    policy = params["account.policy"]
    total_cpu = sum(t.cpu_s for t in owned.values())
    total_worker = sum(t.worker_s for t in owned.values())
    total_wall = sum(t.wall_s for t in owned.values())
    total_engine = sum(t.engine_s for t in owned.values())
    if policy == "split":
        return {
            _payer(tenant): {"cpu_s": t.cpu_s, "wall_s": t.wall_s, "engine_s": t.engine_s}
            for tenant, t in owned.items()
        }
    charges = {_payer(initiator): {"cpu_s": total_cpu, "wall_s": total_wall,
                                   "engine_s": total_engine}}
    if policy == "kthread" and total_worker > 0:
        charges[_payer(initiator)]["cpu_s"] = total_cpu - total_worker
        kthread = charges.setdefault("kthread", {"cpu_s": 0.0, "wall_s": 0.0, "engine_s": 0.0})
        kthread["cpu_s"] += total_worker
    return charges


@hookimpl
def migpolicy_kernel_settings(params):
    return (NoKernelEquivalent(("account.policy",),
                               "who pays for a migration is an open question of the RFC "
                               "series; the kernel has no setting for it"),)
