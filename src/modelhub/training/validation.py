"""The rows a trained model can be measured on: its run's validation split rebuilt, or a
file the user gives (`--eval`, `--calibration`).

A built-in trainer holds out `validation_split` of its dataset by a seeded shuffle
(`tabular_data.split_rows`, the text classifier's stratified `split_indices`);
given the same file, hyperparameters, seed and fraction, the same rows come out here.
Rows are what the serving runtime takes: feature values in the model's `features`
order, or texts, with the class each should get.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.optimisation import EvalRows
from modelhub.errors import InvalidInput

MEASURABLE = ("tabular_classifier", "text_classifier", "char_lm")
MAX_WINDOWS = 64  # as the char LM trainer's own validation loss
MAX_FILE_ROWS = 100_000


def validation_rows(
    trainer: str,
    dataset: Path,
    hyperparameters: dict[str, Any],
    seed: int,
    fraction: float,
    name: str,
    config: dict[str, Any] | None = None,
) -> EvalRows:
    """The validation rows the trainer held out of `dataset` (named `name` in the report);
    for char_lm (whose `config` is the model's config.json) its held-out windows."""
    where = f"the validation split of {name} (seed {seed}, {fraction:.0%})"
    if trainer == "char_lm":
        return char_lm_windows(dataset, config or {}, fraction, where)
    if trainer == "tabular_classifier":
        from modelhub.training.trainers.tabular_data import load_tabular, split_rows

        label = str(hyperparameters.get("label", "label"))
        features = hyperparameters.get("features")
        data = load_tabular(dataset, label, list(features) if features else None)
        _, held_out = split_rows(len(data.y), fraction, seed)
        return EvalRows(
            input="input",
            rows=[data.x[i].tolist() for i in held_out],
            labels=[str(data.classes[int(data.y[i])]) for i in held_out],
            source=where,
        )
    from modelhub.training.trainers.text_classifier import read_examples, split_indices

    text_field = str(hyperparameters.get("text_field", "text"))
    label_field = str(hyperparameters.get("label_field", "label"))
    examples = read_examples(dataset, text_field, label_field)
    classes = sorted({e.label for e in examples})
    _, held = split_indices([classes.index(e.label) for e in examples], fraction, seed)
    return EvalRows(
        input="text",
        rows=[examples[i].text for i in held],
        labels=[examples[i].label for i in held],
        source=where,
    )


def char_lm_windows(dataset: Path, config: dict[str, Any], fraction: float, where: str) -> EvalRows:
    """The char LM trainer's validation text (the corpus' last `fraction`, encoded with
    the model's vocabulary) as consecutive windows of context_length + 1 ids, at most 64:
    the windows its own validation loss is measured on."""
    from modelhub.networks.char_lm import CharLMConfig
    from modelhub.training.trainers.char_lm import read_corpus

    lm = CharLMConfig.from_json(config)
    ids = lm.encode(read_corpus(dataset))
    held = ids[len(ids) - int(len(ids) * fraction) :]
    length = min(lm.context_length, len(held) - 1)
    if length < 1:
        raise InvalidInput(f"{where} holds {len(held)} characters: too few to measure on")
    starts = list(range(0, len(held) - length, length))[:MAX_WINDOWS]
    return EvalRows("ids", [held[s : s + length + 1] for s in starts], [], where)


def file_rows(path: Path, config: dict[str, Any], labelled: bool, option: str) -> EvalRows:
    """Rows of a CSV, JSONL or Parquet file for the model whose config.json is `config`.

    The file must hold the model's inputs (the tabular model's feature columns, or the
    text classifier's text field) and, when `labelled`, its label column; InvalidInput
    names what is missing, and `option` (--eval, --calibration) says which file.
    """
    from modelhub.training.trainers.tabular_data import read_table

    trainer = config.get("trainer")
    if trainer == "char_lm":
        raise InvalidInput(
            f"a char_lm version is measured on its own validation text; {option} takes "
            "a classifier's rows",
            {"field": option},
        )
    table = read_table(path)
    if table.num_rows == 0:
        raise InvalidInput(f"{option} {path.name} holds no rows", {"field": option})
    if table.num_rows > MAX_FILE_ROWS:
        raise InvalidInput(
            f"{option} {path.name} holds {table.num_rows:,} rows; at most {MAX_FILE_ROWS:,}",
            {"field": option},
        )
    if trainer == "tabular_classifier":
        inputs = [str(f) for f in config["features"]]
        label = str(config.get("label", "label"))
    else:
        inputs = [str(config.get("text_field", "text"))]
        label = str(config.get("label_field", "label"))
    needed = inputs + ([label] if labelled else [])
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InvalidInput(
            f"{option} {path.name} lacks column(s) {', '.join(missing)}: the model needs "
            f"{', '.join(needed)}; the file has {', '.join(table.column_names)}",
            {"field": option, "missing": missing, "columns": list(table.column_names)},
        )
    labels = [str(v) for v in table.column(label).to_pylist()] if labelled else []
    if trainer == "tabular_classifier":
        return EvalRows("input", _feature_rows(table, inputs, option), labels, path.name)
    texts = table.column(inputs[0]).to_pylist()
    if any(t is None for t in texts):
        raise InvalidInput(f"{option} {path.name}: column {inputs[0]!r} has empty values")
    return EvalRows("text", [str(t) for t in texts], labels, path.name)


def _feature_rows(table: Any, features: list[str], option: str) -> list[list[float]]:
    import numpy as np

    columns = []
    for name in features:
        try:
            column = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"{option}: feature column {name!r} is not numeric", {"column": name}
            ) from exc
        if not np.isfinite(column).all():
            raise InvalidInput(
                f"{option}: feature column {name!r} holds NaN, infinite or missing values",
                {"column": name},
            )
        columns.append(column)
    matrix = np.stack(columns, axis=1).astype(np.float32)
    return [row.tolist() for row in matrix]
