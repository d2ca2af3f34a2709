"""The demo tenant: a fictional province, labelled as such everywhere.

A seeded generator makes about 20 departments and 100 communes scored over
three years against the shipped demo framework, with marginals that resemble
the published ones (provincial mean near 87, most units in groups A and B).
The real PAR and SIPAS figures are loaded beside it as shared reference data,
with their sources.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .framework import Framework, load_framework

__all__ = [
    "DEMO_TENANT",
    "DEMO_TENANT_NAME",
    "DEMO_FRAMEWORK",
    "DEMO_YEARS",
    "demo_units",
    "demo_scores",
    "build_demo_store",
]

DEMO_TENANT = "demo"
DEMO_TENANT_NAME = "[DEMO] Tỉnh Sông Xanh (tỉnh giả định, dữ liệu minh hoạ)"
DEMO_FRAMEWORK = "demo_department_2024"
DEMO_YEARS = (2022, 2023, 2024)

_DEPARTMENTS = [
    ("S01", "Sở Nội vụ"), ("S02", "Sở Tư pháp"), ("S03", "Sở Tài chính"),
    ("S04", "Sở Công Thương"), ("S05", "Sở Giáo dục và Đào tạo"), ("S06", "Sở Y tế"),
    ("S07", "Sở Xây dựng"), ("S08", "Sở Nông nghiệp và Môi trường"), ("S09", "Sở Khoa học và Công nghệ"),
    ("S10", "Sở Văn hóa, Thể thao và Du lịch"), ("S11", "Sở Dân tộc và Tôn giáo"),
    ("S12", "Thanh tra tỉnh"), ("S13", "Văn phòng UBND tỉnh"), ("S14", "Ban Quản lý các khu công nghiệp"),
    ("S15", "Sở Kế hoạch và Đầu tư"), ("S16", "Sở Giao thông vận tải"), ("S17", "Sở Tài nguyên và Môi trường"),
    ("S18", "Sở Lao động - Thương binh và Xã hội"), ("S19", "Sở Thông tin và Truyền thông"),
    ("S20", "Sở Ngoại vụ"),
]
_REGIONS = ["Vùng ven biển", "Vùng đồng bằng", "Vùng trung du", "Vùng núi"]
_FIRST = ["An", "Bình", "Hòa", "Phú", "Tân", "Long", "Thạnh", "Mỹ", "Hưng", "Phước",
          "Quang", "Thuận", "Vĩnh", "Đông", "Tây", "Nam", "Bắc", "Trung", "Hải", "Sơn"]
_SECOND = ["Lợi", "Thịnh", "Phong", "Xuân", "Hiệp", "Điền", "Lộc", "Khánh", "Thành", "Hà"]


def demo_units(n_communes: int = 100) -> pd.DataFrame:
    """The demo tenant's units.

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``name``, ``kind`` (department | commune),
        ``parent_code`` (None), ``region`` (None for departments),
        ``active_from``, ``active_to``.
    """
    rows = [{"code": c, "name": f"{n} (giả định)", "kind": "department", "parent_code": None,
             "region": None, "active_from": DEMO_YEARS[0], "active_to": None} for c, n in _DEPARTMENTS]
    for i in range(n_communes):
        prefix = "Phường" if i % 5 == 0 else "Xã"
        name = f"{prefix} {_FIRST[i % len(_FIRST)]} {_SECOND[(i // len(_FIRST)) % len(_SECOND)]}"
        rows.append({"code": f"X{i + 1:03d}", "name": name, "kind": "commune", "parent_code": None,
                     "region": _REGIONS[i % len(_REGIONS)], "active_from": DEMO_YEARS[0], "active_to": None})
    return pd.DataFrame(rows)


def demo_scores(framework: Framework, units: pd.DataFrame, years=DEMO_YEARS, seed: int = 2024) -> pd.DataFrame:
    """Seeded scores for every unit, year and leaf of ``framework``.

    Each unit has a persistent quality and a yearly trend; each leaf a
    difficulty. The share of a leaf's points a unit earns follows a logistic
    curve of both, snapped to the rubric's levels where the node has them.
    Appraisers cut about one self score in twelve by a step, with a reason.

    Returns
    -------
    pandas.DataFrame
        Long form: ``unit_code``, ``year``, ``node_code``, ``self_score``,
        ``appraised_score``, ``survey_points``, ``bonus``, ``penalty``,
        ``explanation``, ``appraisal_reason``, ``evidence``.
    """
    rng = np.random.default_rng(seed)
    leaves = framework.leaves.reset_index(drop=True)
    n_units, n_leaves, years = len(units), len(leaves), list(years)
    quality = rng.normal(0.0, 0.4, n_units)
    trend = rng.normal(0.12, 0.08, n_units)
    difficulty = rng.normal(0.0, 0.8, n_leaves)
    maxp = leaves["max_points"].to_numpy()
    survey = (leaves["assessed_by"] == "survey").to_numpy()
    frames = []
    for t, year in enumerate(years):
        latent = (2.3 + quality[:, None] + trend[:, None] * t - difficulty[None, :]
                  + rng.normal(0, 0.9, (n_units, n_leaves)))
        share = 1.0 / (1.0 + np.exp(-latent))
        raw = share * maxp[None, :]
        score = np.round(raw * 4) / 4  # quarter points
        score = np.minimum(score, maxp[None, :])
        for j, rubric in enumerate(leaves["rubric"]):
            if rubric:
                levels = np.array(sorted(p for p, _, _ in rubric))
                idx = np.abs(raw[:, j][:, None] - levels[None, :]).argmin(axis=1)
                score[:, j] = levels[idx]
        cut = (rng.random((n_units, n_leaves)) < 1 / 12) & ~survey[None, :] & (score > 0)
        step = np.where(maxp >= 1, 0.5, 0.25)[None, :]
        appraised = np.where(cut, np.maximum(score - step, 0), score)
        for j, rubric in enumerate(leaves["rubric"]):
            if rubric:
                levels = np.array(sorted(p for p, _, _ in rubric))
                below = [levels[levels < s].max() if (levels < s).any() else 0.0 for s in score[:, j]]
                appraised[:, j] = np.where(cut[:, j], below, score[:, j])
        unit_idx = np.repeat(np.arange(n_units), n_leaves)
        leaf_idx = np.tile(np.arange(n_leaves), n_units)
        flat_score = score.ravel()
        flat_appr = appraised.ravel()
        flat_cut = cut.ravel()
        is_survey = survey[leaf_idx]
        frames.append(pd.DataFrame({
            "unit_code": units["code"].to_numpy()[unit_idx],
            "year": year,
            "node_code": leaves["code"].to_numpy()[leaf_idx],
            "self_score": np.where(is_survey, np.nan, flat_score),
            "appraised_score": np.where(is_survey, np.nan, flat_appr),
            "survey_points": np.where(is_survey, flat_score, np.nan),
            "bonus": np.nan,
            "penalty": np.nan,
            "explanation": np.where(flat_cut, "Đã hoàn thành theo kế hoạch (minh hoạ)", ""),
            "appraisal_reason": np.where(flat_cut, "Tài liệu kiểm chứng chưa đầy đủ (minh hoạ)", ""),
            "evidence": np.where(is_survey, "", "https://example.invalid/demo/kiem-chung"),
        }))
    scores = pd.concat(frames, ignore_index=True)
    # A few units earn a bonus or a penalty each year (within the framework's caps).
    first = scores.drop_duplicates(["unit_code", "year"]).index
    pick = rng.random(len(first))
    if framework.bonus_cap:
        scores.loc[first[pick < 0.15], "bonus"] = min(1.0, framework.bonus_cap)
    if framework.penalty_cap:
        scores.loc[first[pick > 0.93], "penalty"] = min(1.0, framework.penalty_cap)
    return scores


def build_demo_store(url: str | None = None, *, seed: int = 2024, if_absent: bool = False) -> str:
    """Create or refresh the demo tenant in a store.

    Parameters
    ----------
    url
        Store URL (None: the embedded default).
    seed
        Seed of the generator: the same seed gives the same store.
    if_absent
        Leave an existing demo tenant as it is.

    Returns
    -------
    str
        One line saying what was done.
    """
    from .store import Store

    store = Store(url)
    store.upgrade()
    if if_absent and DEMO_TENANT in set(store.tenants()["code"]):
        return f"demo store already present at {store.url} (parindex demo refreshes it)"
    framework = load_framework(DEMO_FRAMEWORK)
    store.reset_tenant(DEMO_TENANT, DEMO_TENANT_NAME, admin_user="demo")
    store.add_shared_framework(framework)
    _load_shared_reference(store)
    units = demo_units()
    scores = demo_scores(framework, units, seed=seed)
    with store.session(tenant=DEMO_TENANT, user="demo") as s:
        s.upsert_units(units)
        s.write_scores(scores, framework_id=framework.id, source=f"demo generator (seed {seed})")
        for year in DEMO_YEARS:
            steps = ("submitted", "appraised", "published") if year < DEMO_YEARS[-1] else ("submitted", "appraised")
            for code in units["code"]:
                for status in steps:
                    s.set_status(code, year, status, reason="demo data")
    return (f"demo store ready at {store.url}: tenant {DEMO_TENANT} ({DEMO_TENANT_NAME}), "
            f"{len(units)} units, years {DEMO_YEARS[0]}-{DEMO_YEARS[-1]}, {len(scores)} scores")


def _load_shared_reference(store) -> None:
    """Load the shipped public figures (PAR, SIPAS, PCI, PAPI) when available."""
    try:
        from .external import load_shipped, external_catalogue
    except ImportError:
        return
    store.load_reference(load_shipped(), external_catalogue())
