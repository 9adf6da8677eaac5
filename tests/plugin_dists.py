"""Real installed-looking distributions for plugin tests: a folder of `*.dist-info`
directories (METADATA, entry_points.txt) and the modules they name, to put on
sys.path or a server's PYTHONPATH. Nothing here mocks modelhub."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

SAMPLE_SRC = Path(__file__).resolve().parents[1] / "examples" / "modelhub-sklearn-runtime" / "src"
SAMPLE_TRAINER = "sklearn_logistic"


def write_dist(
    root: Path, package: str, version: str, entry_points: dict[str, dict[str, str]]
) -> Path:
    """A `<package>-<version>.dist-info` under `root` declaring `entry_points`
    ({group: {name: "module:attr"}})."""
    info = root / f"{package.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = []
    for group, names in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in names.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return info


def write_module(root: Path, name: str, source: str) -> Path:
    path = root / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    return path


def broken_plugins(root: Path, prefix: str = "mh_test") -> Path:
    """Three bad plugins: one that raises on import, one whose object lacks the
    interface (a runtime and the trainer `hollow_trainer`), one that takes a built-in's
    name. Returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    write_module(root, f"{prefix}_exploding", 'raise RuntimeError("boom at import")\n')
    write_module(root, f"{prefix}_hollow", "runtime = object()\n")
    write_module(
        root,
        f"{prefix}_shadow",
        "class Shadow:\n"
        "    def claims(self, path):\n        return True\n"
        "    def load(self, path, *, trusted):\n        raise AssertionError('never called')\n"
        "runtime = Shadow()\n",
    )
    write_dist(
        root,
        f"{prefix}-exploding",
        "1.0",
        {"modelhub.runtimes": {"exploding": f"{prefix}_exploding:runtime"}},
    )
    write_dist(
        root,
        f"{prefix}-hollow",
        "2.0",
        {
            "modelhub.runtimes": {"hollow": f"{prefix}_hollow:runtime"},
            "modelhub.trainers": {"hollow_trainer": f"{prefix}_hollow:runtime"},
        },
    )
    write_dist(
        root, f"{prefix}-shadow", "3.0", {"modelhub.runtimes": {"onnx": f"{prefix}_shadow:runtime"}}
    )
    return root


def sample_trainer(root: Path) -> list[str]:
    """PYTHONPATH entries under which the sample trainer `sklearn_logistic` is found,
    from this checkout's examples/modelhub-sklearn-runtime.

    Where the installed sample already declares it (`make install` from this tree),
    only the source folder is added. Where the installed one predates it (a venv
    layered on another checkout), a dist-info of its own declares it under `root`: the
    sample's own distribution name would be a second copy, and its runtime's name
    would then be claimed twice and refused."""
    installed = {ep.name for ep in metadata.entry_points(group="modelhub.trainers")}
    if SAMPLE_TRAINER in installed:
        return [str(SAMPLE_SRC)]
    write_dist(
        root,
        "mh_test-sample-trainer",
        "0.1.0",
        {"modelhub.trainers": {SAMPLE_TRAINER: "modelhub_sklearn.trainer:trainer"}},
    )
    return [str(root), str(SAMPLE_SRC)]


HANDOVER = '''
from modelhub.training.executor import LocalExecutor


class Handover:
    """Hands each attempt to cold worker processes on this host, saying so in its log."""

    def __init__(self, settings):
        self.inner = LocalExecutor(warm=0, pool_log=settings.runs_dir / "handover.log")

    @property
    def on_exit(self):
        return self.inner.on_exit

    @on_exit.setter
    def on_exit(self, wake):
        self.inner.on_exit = wake

    def start(self, attempt):
        with open(attempt.log_file, "a") as log:
            log.write(f"handed over: run {attempt.run_id} attempt {attempt.number}\\n")
        return self.inner.start(attempt)

    def close(self):
        self.inner.close()


def open_handover(settings):
    return Handover(settings)


def open_nothing(settings):
    return None


def open_broken(settings):
    raise RuntimeError("no cluster here")


def open_hollow(settings):
    return object()
'''


def executor_plugins(root: Path, prefix: str = "mh_test") -> Path:
    """Executor plugins in one package: `handover` (hands attempts to worker processes
    on this host, writing a line into the run log first), `unset` (its factory returns
    None: not set up here), `broken_factory` (its factory raises), `hollow_executor`
    (its factory returns no executor) and `class_executor` (names a class, not a
    factory). Returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    module = f"{prefix}_handover"
    write_module(root, module, HANDOVER)
    write_dist(
        root,
        f"{prefix}-handover",
        "1.0",
        {
            "modelhub.executors": {
                "handover": f"{module}:open_handover",
                "unset": f"{module}:open_nothing",
                "broken_factory": f"{module}:open_broken",
                "hollow_executor": f"{module}:open_hollow",
                "class_executor": f"{module}:Handover",
            }
        },
    )
    return root
