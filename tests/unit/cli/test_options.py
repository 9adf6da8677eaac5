"""Flags become the services' request models; a refused value names its flag."""

from __future__ import annotations

import pytest

from modelhub.cli.options import options_from
from modelhub.domain.bias import BiasOptions
from modelhub.domain.explanation import ExplainMethod, ExplainOptions
from modelhub.errors import InvalidInput


def test_good_flags_make_the_request_model() -> None:
    options = options_from(ExplainOptions, method="permutation", label="y", row=None)
    assert options.method is ExplainMethod.PERMUTATION and options.label == "y"
    bias = options_from(BiasOptions, sensitive=["gender", "age_band"], label="label")
    assert bias.sensitive == ["gender", "age_band"] and bias.positive is None


@pytest.mark.parametrize(
    ("model", "flags", "says"),
    [
        (ExplainOptions, {"method": "astrology"}, "--method: Input should be"),
        (ExplainOptions, {"baseline": "ones"}, "--baseline: String should match"),
        (ExplainOptions, {"row": -1}, "--row:"),
        (BiasOptions, {"sensitive": [], "label": "y"}, "--sensitive: List should have at least"),
        (BiasOptions, {"sensitive": list("abcdef"), "label": "y"}, "--sensitive:"),
        (BiasOptions, {"sensitive": ["g"], "label": ""}, "--label:"),
    ],
)
def test_a_refused_flag_is_one_error_naming_it(
    model: type[ExplainOptions | BiasOptions], flags: dict[str, object], says: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        options_from(model, **flags)
    assert exc.value.message.startswith(says), exc.value.message
