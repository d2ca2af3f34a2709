"""Small stores for the apps' tests and benchmarks (never used by the apps).

:func:`small_store` makes a tenant with a few units on any framework: one
draft assessment to self-assess, one submitted with self scores to
appraise, and one unit whose name is an HTML injection attempt.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from parindex_lib.framework import Framework

from .base import Environment

__all__ = ["TENANT", "ADMIN", "XSS_NAME", "small_store", "small_env", "self_scores"]

TENANT = "t1"
ADMIN = "ana"
XSS_NAME = "<img src=x onerror=alert(1)>"


def self_scores(framework: Framework, unit_code: str, year: int, share: float = 0.8) -> pd.DataFrame:
    """Self scores at ``share`` of each self leaf's maximum (on the rubric where there is one),
    survey points at ``share`` of the survey leaves, evidence as a link."""
    rows = []
    for leaf in framework.leaves.itertuples(index=False):
        mp = float(leaf.max_points)
        if leaf.assessed_by == "survey":
            rows.append({"unit_code": unit_code, "year": year, "node_code": leaf.code, "survey_points": mp * share})
            continue
        x = round(mp * share * 4) / 4
        if leaf.rubric:
            x = min((p for p, _, _ in leaf.rubric), key=lambda p: abs(p - mp * share))
        rows.append({"unit_code": unit_code, "year": year, "node_code": leaf.code, "self_score": float(x),
                     "evidence": "https://example.invalid/kiem-chung"})
    return pd.DataFrame(rows)


def small_store(url: str, framework: Framework, year: int = 2024) -> Any:
    """A store with tenant ``t1`` (admin ``ana``) and units:

    - ``D01`` Sở Tư pháp: a draft assessment for ``year`` (nothing scored);
    - ``D02``: named :data:`XSS_NAME`, self-scored and submitted;
    - ``D03`` Sở Y tế: self-scored and submitted;
    - ``X001`` Xã An Lợi (commune): self-scored, appraised.

    D02, D03 and X001 also have self scores for ``year - 1`` (drafts), D03
    ahead of D02 then and behind it in ``year``.
    """
    from parindex_lib.store import Store

    store = Store(url)
    store.create_tenant(TENANT, "Tổ chức thử nghiệm", admin_user=ADMIN)
    store.add_shared_framework(framework)
    units = pd.DataFrame([
        {"code": "D01", "name": "Sở Tư pháp", "kind": "department"},
        {"code": "D02", "name": XSS_NAME, "kind": "department"},
        {"code": "D03", "name": "Sở Y tế", "kind": "department"},
        {"code": "X001", "name": "Xã An Lợi", "kind": "commune", "region": "Vùng núi"},
    ])
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.upsert_units(units)
        s.create_assessment("D01", year, framework.id)
        for code, share, before in (("D02", 0.8, 0.5), ("D03", 0.6, 0.9), ("X001", 0.9, 0.9)):
            s.write_scores(self_scores(framework, code, year - 1, before), framework_id=framework.id, source="test")
            s.write_scores(self_scores(framework, code, year, share), framework_id=framework.id, source="test")
            s.set_status(code, year, "submitted", reason="test")
        s.set_status("X001", year, "appraised", reason="test")
    return store


def small_env(url: str, lang: str = "vi", user: str = ADMIN, **query: str) -> Environment:
    """The environment of a visitor of the small store."""
    return Environment(db=url, tenant=TENANT, user=user, lang=lang, query={k: [v] for k, v in query.items()})
