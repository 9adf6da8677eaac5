"""Coverage-guided fuzzing of pipeline.yaml parsing and the estimate (issue 19, section 6).

    python fuzz/fuzz_pipeline_yaml.py fuzz/corpus/pipeline_yaml/ -max_total_time=60

libFuzzer adds what it finds to the first folder it is given; to keep the committed
seeds small, name a scratch folder first: `... /tmp/pipeline_yaml fuzz/corpus/pipeline_yaml/ ...`.

The contract: parse_spec returns a PipelineSpec that the estimate can price, or raises
modelhub.errors.ModelhubError. Any other exception is a crash that libFuzzer saves.
Bytes are decoded with surrogateescape, so undecodable input becomes lone surrogates,
as it does in a command-line argument.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from modelhub.errors import ModelhubError
    from modelhub.training.estimate import Prices, estimate, guess_parameters
    from modelhub.training.spec import named_script, parse_spec

PRICES = Prices()


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    named_script(text)
    try:
        spec = parse_spec(text)
    except ModelhubError:
        return
    parameters = guess_parameters(spec, {"a": "float", "b": "int", "label": "int"}, None)
    estimate(spec, parameters, "fp32", 10_000, 100.0, PRICES)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
