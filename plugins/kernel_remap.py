"""Kernel-default remap stage: install the new entries and free the source, per folio.

Serial like unmapping: a fixed cost per folio plus a cost per page-table entry
per mapping.
"""

from __future__ import annotations

from migpolicy.contract import hookimpl, page_table_entries

from ._pricing import cost_rows, ns


@hookimpl(trylast=True)
def migpolicy_remap(batches, hw, params):
    folios = batches.folios
    ptes = page_table_entries(folios, hw.base_page, mappings=True)
    per_folio = hw.p("stages.remap.folio_ns") + hw.p("stages.remap.pte_ns") * ptes
    wall = batches.per_batch(per_folio) * ns
    return cost_rows(batches, wall_s=wall, cpu_s=wall)
