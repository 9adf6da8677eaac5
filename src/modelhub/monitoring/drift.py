"""Drift: a live window's columns against a version's reference profile.

The test for each column is the one common practice uses, chosen as Evidently's
data-drift preset chooses by default, so that both tools agree on a verdict:

- numeric (more than 5 distinct values): Kolmogorov-Smirnov (`scipy.stats.ks_2samp`),
  drifted when p < 0.01; when both the reference and the live window hold more than
  1000 values, Wasserstein distance (`scipy.stats.wasserstein_distance`) over the
  reference's standard deviation, drifted when >= 0.1;
- categorical: chi-squared on the 2 x k table of counts (`scipy.stats.chi2_contingency`),
  p < 0.01; with more than 1000 values on both sides, Jensen-Shannon distance
  (`scipy.spatial.distance.jensenshannon`) >= 0.1;
- text: its length as a numeric column, and MMD of its embeddings;
- vector (embeddings): squared MMD with an RBF kernel, permutation test with a fixed seed.

Evidently picks distances by the reference's size alone; here the live window must be
large too, since a distance over a few hundred live values is mostly noise (20
unshifted normal features against a 5,000-row reference, 500-row windows: 61 of 100
windows crossed 0.1 somewhere).

Testing many columns at once, some p-value will fall under 0.05 by chance; the
p-values of one check are corrected together with Benjamini-Hochberg
(`scipy.stats.false_discovery_control`), and a column drifted only when its adjusted
p-value is under the threshold. Distances are no probabilities and are not corrected.
PSI (population stability index over the reference's decile bins, or its
categories) is given with every numeric and categorical verdict as a summary figure;
it decides nothing.

scipy is imported where a test runs: a server that never checks drift never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from modelhub.domain.drift import DriftTest, FeatureKind, FeatureVerdict
from modelhub.monitoring.drift_profile import (
    OTHER,
    CategoricalProfile,
    ColumnProfile,
    Floats,
    NumericProfile,
    Profile,
    TextProfile,
    VectorProfile,
    as_numbers,
    bin_shares,
    category_counts,
    embed_text,
)

PSI_FLOOR = 1e-4  # an empty bin's share, so that PSI stays finite
CORRECTION = "benjamini-hochberg"


@dataclass(frozen=True)
class DriftConfig:
    p_value: float = 0.01  # drifted when the adjusted p-value is below this
    distance: float = 0.1  # drifted when the distance is at least this
    large_sample: int = 1000  # more reference AND live rows than this: distances, not p-values
    min_live_rows: int = 30  # fewer live values than this: not compared
    vector_sample: int = 500  # live rows an MMD test draws at most
    permutations: int = 200  # of the MMD permutation test
    seed: int = 0


@dataclass
class Comparison:
    verdicts: list[FeatureVerdict]
    skipped: dict[str, str]
    live_rows: int

    @property
    def drifted_features(self) -> list[str]:
        return [v.feature for v in self.verdicts if v.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / len(self.verdicts) if self.verdicts else 0.0


@dataclass
class _Raw:
    """A verdict before the correction: the p-value is not final yet."""

    feature: str
    role: str
    kind: FeatureKind
    test: DriftTest
    statistic: float
    p_value: float | None
    distance: float | None
    psi: float | None
    reference_rows: int
    live_rows: int


def psi(reference: Floats, live: Floats) -> float:
    """Population stability index of two share vectors over the same bins."""
    ref = np.maximum(reference, PSI_FLOOR)
    cur = np.maximum(live, PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _numeric(
    name: str, role: str, kind: FeatureKind, ref: NumericProfile, live: Floats, config: DriftConfig
) -> _Raw:
    # Sorted once here: scipy's tests sort again, and run 3x faster on sorted input.
    live = np.sort(live[~np.isnan(live)])
    summary = psi(ref.shares, bin_shares(live, ref.edges))
    common = (name, role, kind)
    if min(ref.rows, live.size) <= config.large_sample:
        from scipy.stats import ks_2samp

        result = ks_2samp(ref.sample, live)
        return _Raw(*common, DriftTest.KS, float(result.statistic), float(result.pvalue),
                    None, summary, ref.rows, live.size)  # fmt: skip
    norm = max(ref.std, 0.001)
    from scipy.stats import wasserstein_distance

    value = float(wasserstein_distance(ref.sample, live)) / norm
    return _Raw(*common, DriftTest.WASSERSTEIN, value, None, value, summary, ref.rows, live.size)


def _categorical(
    name: str,
    role: str,
    ref: CategoricalProfile,
    live: npt.NDArray[np.object_],
    config: DriftConfig,
) -> _Raw:
    counts, _ = category_counts(live)
    known = set(ref.counts)
    folded: dict[str, int] = {}
    for key, count in counts.items():
        bucket = key if key in known or OTHER not in known else OTHER
        folded[bucket] = folded.get(bucket, 0) + count
    keys = sorted(known | set(folded))
    ref_counts = np.array([ref.counts.get(k, 0) for k in keys], dtype=np.float64)
    live_counts = np.array([folded.get(k, 0) for k in keys], dtype=np.float64)
    live_total = int(live_counts.sum())
    ref_shares = ref_counts / max(ref_counts.sum(), 1.0)
    live_shares = live_counts / max(live_total, 1)
    summary = psi(ref_shares, live_shares)
    common = (name, role, FeatureKind.CATEGORICAL)
    if min(ref.rows, live_total) <= config.large_sample:
        table = np.vstack([ref_counts, live_counts])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return _Raw(*common, DriftTest.CHI2, 0.0, 1.0, None, summary, ref.rows, live_total)
        from scipy.stats import chi2_contingency

        result = chi2_contingency(table, correction=False)
        return _Raw(*common, DriftTest.CHI2, float(result.statistic), float(result.pvalue),
                    None, summary, ref.rows, live_total)  # fmt: skip
    from scipy.spatial.distance import jensenshannon

    value = float(jensenshannon(ref_shares, live_shares))
    return _Raw(
        *common, DriftTest.JENSEN_SHANNON, value, None, value, summary, ref.rows, live_total
    )


def mmd_test(reference: Floats, live: Floats, permutations: int, seed: int) -> tuple[float, float]:
    """Squared MMD with an RBF kernel (median-distance bandwidth) and its permutation p-value."""
    pooled = np.vstack([reference, live])
    squared = np.sum(pooled**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T, 0.0)
    upper = distances[np.triu_indices(len(pooled), k=1)]
    bandwidth = float(np.median(upper)) or 1.0
    kernel = np.exp(-distances / bandwidth)
    n, m = len(reference), len(live)
    weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    rng = np.random.default_rng(seed)
    shuffled = np.stack([rng.permutation(weights) for _ in range(permutations)], axis=1)
    observed = float(weights @ kernel @ weights)
    null = np.einsum("ip,ip->p", shuffled, kernel @ shuffled)
    p_value = (1 + int(np.sum(null >= observed))) / (permutations + 1)
    return observed, p_value


def _vectors(
    name: str, role: str, kind: FeatureKind, ref: Floats, ref_rows: int, live: Floats,
    config: DriftConfig,
) -> _Raw:  # fmt: skip
    rng = np.random.default_rng(config.seed)
    if len(live) > config.vector_sample:
        live = live[np.sort(rng.choice(len(live), size=config.vector_sample, replace=False))]
    statistic, p_value = mmd_test(ref, live, config.permutations, config.seed)
    return _Raw(
        name, role, kind, DriftTest.MMD, statistic, p_value, None, None, ref_rows, len(live)
    )


def _live_count(profile: ColumnProfile, values: npt.NDArray[np.generic]) -> int:
    if isinstance(profile, VectorProfile):
        return int(np.isfinite(np.asarray(values, dtype=np.float64)).all(axis=1).sum())
    numbers = as_numbers(values) if isinstance(profile, NumericProfile) else None
    if numbers is not None:
        return int((~np.isnan(numbers)).sum())
    return int(sum(1 for v in values if v is not None and v == v and v != ""))


def _column(
    name: str, role: str, ref: ColumnProfile, values: npt.NDArray[np.generic], config: DriftConfig
) -> list[_Raw]:
    if isinstance(ref, NumericProfile):
        numbers = as_numbers(values)
        if numbers is None:
            raise ValueError("live values are not numbers, the reference's are")
        return [_numeric(name, role, FeatureKind.NUMERIC, ref, numbers, config)]
    if isinstance(ref, CategoricalProfile):
        return [_categorical(name, role, ref, np.asarray(values, dtype=object), config)]
    if isinstance(ref, TextProfile):
        texts = [str(v) for v in values if v is not None and v == v and v != ""]
        lengths = np.array([len(t) for t in texts], dtype=np.float64)
        return [
            _numeric(f"{name}:length", role, FeatureKind.TEXT, ref.lengths, lengths, config),
            _vectors(
                f"{name}:embedding",
                role,
                FeatureKind.TEXT,
                ref.embeddings,
                ref.rows,
                embed_text(texts),
                config,
            ),
        ]
    rows = np.asarray(values, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != ref.sample.shape[1]:
        raise ValueError(f"live rows are not {ref.sample.shape[1]} numbers wide")
    rows = rows[np.isfinite(rows).all(axis=1)]
    return [_vectors(name, role, FeatureKind.VECTOR, ref.sample, ref.rows, rows, config)]


def compare(
    profile: Profile, live: dict[str, npt.NDArray[np.generic]], config: DriftConfig | None = None
) -> Comparison:
    """Every profiled column that has live values, tested and corrected together.

    A column with too few live values, or none, or values of another kind than the
    reference's, is skipped with the reason; a live column the profile does not
    know is skipped too. Nothing here raises for the data's sake.
    """
    config = config or DriftConfig()
    raws: list[_Raw] = []
    skipped: dict[str, str] = {}
    for name, ref in profile.columns.items():
        values = live.get(name)
        if values is None:
            skipped[name] = "no live values"
            continue
        values = np.asarray(values) if not isinstance(values, np.ndarray) else values
        count = _live_count(ref, values)
        if count < config.min_live_rows:
            skipped[name] = f"{count} live values, fewer than {config.min_live_rows}"
            continue
        try:
            raws.extend(_column(name, profile.roles.get(name, "input"), ref, values, config))
        except (ValueError, TypeError) as exc:
            skipped[name] = str(exc)
    for name in live:
        if name not in profile.columns:
            skipped[name] = "not in the reference profile"
    live_rows = max((len(v) for v in live.values()), default=0)
    return Comparison(_corrected(raws, config), skipped, live_rows)


def _corrected(raws: list[_Raw], config: DriftConfig) -> list[FeatureVerdict]:
    tested = [r.p_value for r in raws if r.p_value is not None]
    from scipy.stats import false_discovery_control

    adjusted = iter(
        false_discovery_control(np.array(tested), method="bh").tolist() if tested else []
    )
    verdicts = []
    for raw in raws:
        if raw.p_value is not None:
            adjusted_p = min(float(next(adjusted)), 1.0)
            threshold, drifted = config.p_value, adjusted_p < config.p_value
        else:
            adjusted_p = None
            assert raw.distance is not None
            threshold, drifted = config.distance, raw.distance >= config.distance
        verdicts.append(
            FeatureVerdict(
                feature=raw.feature,
                role=raw.role,
                kind=raw.kind,
                test=raw.test,
                statistic=raw.statistic,
                p_value=raw.p_value,
                adjusted_p_value=adjusted_p,
                distance=raw.distance,
                threshold=threshold,
                drifted=drifted,
                psi=raw.psi,
                reference_rows=raw.reference_rows,
                live_rows=raw.live_rows,
            )
        )
    return verdicts


def split_columns(
    arrays: dict[str, npt.NDArray[np.generic]], names: dict[str, list[str]]
) -> dict[str, npt.NDArray[np.generic]]:
    """Tensors as columns: a 2-D input whose columns `names` knows (a tabular model's
    features) becomes one column per feature; other 2-D arrays stay vectors."""
    out: dict[str, npt.NDArray[np.generic]] = {}
    for key, values in arrays.items():
        array = np.asarray(values)
        known = names.get(key)
        if array.ndim == 2 and known and array.shape[1] == len(known):
            for index, feature in enumerate(known):
                out[feature] = array[:, index]
        elif array.ndim == 2 and array.shape[1] == 1:
            out[key] = array[:, 0]
        else:
            out[key] = array
    return out
