"""The package's structure: imports point one way along the data flow; TensorFlow loads late."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, assert_error, cli

PACKAGE = ROOT / "autoencoder"

# The data flow, top to bottom (docs/architecture.md). A module may import modules of earlier
# layers only: never one of its own layer, never one below.
LAYERS = [
    {"errors", "atomic"},
    {"lock"},
    {"runtime", "config"},
    {"precision"},
    {"shapes"},
    {"memory"},
    {"losses"},
    {"vae"},
    {"model"},
    {"data"},
    {"noise"},
    {"distribute"},
    {"runs"},
    {"callbacks"},
    {"listing"},
    {"trainer"},
    {"evaluate", "neighbors"},
    {"plots"},
    {"pipeline"},
    {"denoise", "bench", "predict", "export", "embed", "anomaly", "comparison"},
    {"anomaly_benchmark"},
    {"api"},
    {"tuning"},
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_of(path: Path) -> str:
    """autoencoder/data/splits.py -> "data" (a package counts as one module)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def outside_functions(tree: ast.AST):
    """The nodes of a tree that run when its module is imported: all but function bodies."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo.extend(ast.iter_child_nodes(node))


def imported_modules(
    source: str, package_path: tuple[str, ...], in_functions: bool = True
) -> set[str]:
    """Top-level autoencoder modules a source imports (also inside functions, by default)."""
    found = set()
    tree = ast.parse(source)
    for node in ast.walk(tree) if in_functions else outside_functions(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = ["autoencoder", *package_path[: len(package_path) - node.level]]
                names = [".".join([*base, node.module or ""]).rstrip(".")]
            else:
                names = [node.module or ""]
            # `from autoencoder import runs` names the module in the imported names.
            if names[0] == "autoencoder":
                names = [f"autoencoder.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "autoencoder" and len(parts) > 1:
                found.add(parts[1])
    return found


def upward_imports(sources: dict[str, list[tuple[tuple, str]]]) -> list[str]:
    """Every import that points up the chain (or sideways, or to an unranked module)."""
    bad = []
    for module, files in sorted(sources.items()):
        for parts, text in files:
            for target in imported_modules(text, parts) - {module}:
                if module not in RANK or target not in RANK:
                    bad.append(f"{module} -> {target}: not in LAYERS")
                elif RANK[target] >= RANK[module]:
                    bad.append(f"{module} -> {target}")
    return sorted(set(bad))


def package_sources() -> dict[str, list[tuple[tuple, str]]]:
    """Module -> its files as (path parts inside the package, source)."""
    sources: dict[str, list[tuple[tuple, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        sources.setdefault(module_of(path), []).append((parts, path.read_text()))
    return sources


def test_every_import_points_down_the_data_flow():
    sources = package_sources()
    assert set(sources) == set(RANK), "a new module needs its place in LAYERS"
    assert upward_imports(sources) == []


def test_the_check_catches_an_upward_or_circular_import():
    sources = package_sources()
    sources["model"].append((("model",), "def f():\n    from autoencoder.trainer import fit\n"))
    sources["data"].append((("data", "new"), "from ..plots import plot_all\n"))
    sources["denoise"].append((("denoise",), "import autoencoder.bench\n"))
    assert upward_imports(sources) == ["data -> plots", "denoise -> bench", "model -> trainer"]


def test_relative_imports_inside_the_data_package_resolve():
    assert imported_modules("from .splits import Splits", ("data", "x")) == {"data"}
    assert imported_modules("from ..trainer import fit", ("data", "x")) == {"trainer"}


# The files of the shapes package in the same one-way order (docs/architecture.md).
SHAPES_FILES = ["arithmetic", "plan", "layers", "skips", "decoder", "planner", "text"]


def shapes_upward_imports(sources: dict[str, str]) -> list[str]:
    """Every import inside the shapes package of a file of its own rank or below."""
    rank = {name: i for i, name in enumerate(SHAPES_FILES)}
    bad = []
    for name, text in sorted(sources.items()):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "autoencoder.shapes."
            ):
                target = node.module.split(".")[2]
                if rank.get(target, len(rank)) >= rank.get(name, -1):
                    bad.append(f"{name} -> {target}")
    return sorted(set(bad))


def shapes_sources() -> dict[str, str]:
    files = (PACKAGE / "shapes").glob("*.py")
    return {p.stem: p.read_text() for p in files if p.name != "__init__.py"}


def test_files_inside_shapes_import_only_files_above_them():
    sources = shapes_sources()
    assert sorted(sources) == sorted(SHAPES_FILES), "a new file needs its place in SHAPES_FILES"
    assert shapes_upward_imports(sources) == []


def test_the_shapes_check_catches_a_downward_import():
    sources = shapes_sources()
    sources["plan"] += "\nfrom autoencoder.shapes.text import format_plan\n"
    sources["layers"] += "\nfrom autoencoder.shapes.layers import _conv_layer\n"
    assert shapes_upward_imports(sources) == ["layers -> layers", "plan -> text"]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


# Modules whose whole purpose is to hold Keras subclasses: they import Keras at their top, so
# every other module imports them only inside functions (docs/architecture.md).
KERAS_CLASS_MODULES = {
    "vae": "the VAE model and its Sampling layer, registered for serialisation",
    "losses": "the Charbonnier and SSIM + L1 loss class, registered for serialisation",
    "callbacks": "the trainer's callbacks, subclasses of keras.callbacks.Callback",
}


def test_importing_any_module_does_not_import_tensorflow():
    modules = sorted(
        f"autoencoder.{m}" for m in RANK if m != "__main__" and m not in KERAS_CLASS_MODULES
    )
    code = (
        f"import sys\nfor m in {modules!r}:\n    __import__(m)\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules)\n"
        "print(loaded)"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def keras_class_imports_at_module_level(sources: dict[str, list[tuple[tuple, str]]]) -> list[str]:
    """Every module that imports a Keras-class module when it is itself imported."""
    bad = []
    for module, files in sorted(sources.items()):
        for parts, text in files:
            for target in imported_modules(text, parts, False) & set(KERAS_CLASS_MODULES):
                bad.append(f"{module} -> {target}")
    return sorted(set(bad))


def test_keras_class_modules_are_imported_only_inside_functions():
    assert set(KERAS_CLASS_MODULES) <= set(RANK)
    assert keras_class_imports_at_module_level(package_sources()) == []


def test_the_keras_class_check_catches_a_module_level_import():
    sources = package_sources()
    sources["model"].append((("model",), "from autoencoder.vae import VAE\n"))
    sources["trainer"].append((("trainer",), "if True:\n    import autoencoder.vae\n"))
    sources["plots"].append((("plots",), "def f():\n    from autoencoder import vae\n"))
    assert keras_class_imports_at_module_level(sources) == ["model -> vae", "trainer -> vae"]


def test_the_package_and_its_api_names_leave_tensorflow_out_of_sys_modules():
    code = (
        "import sys, autoencoder as ae\nassert 'autoencoder.api' not in sys.modules\n"
        "ae.train, ae.Run, ae.load_config, ae.plan\nassert callable(ae.train)\n"
        "print('tensorflow' in sys.modules)"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def test_import_autoencoder_trainer_leaves_tensorflow_out_of_sys_modules():
    result = run_python("import sys, autoencoder.trainer; print('tensorflow' in sys.modules)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


BAD_CONFIG = "model: {encoder: [{filters: 0}]}\n"


@pytest.mark.parametrize(
    "argv, status",
    [
        (["--help"], 0),
        (["train", "--help"], 0),
        (["shapes", "configs/seed_tutorial.yaml"], 0),
        (["schema"], 0),
        (["schema", "--markdown"], 0),
        (["train", "BAD"], 2),
        (["shapes", "BAD"], 2),
        (["train", "configs/quickstart.yaml", "--set", "train.epochs=0"], 2),
        (["resume", "/nonexistent/run"], 2),
        (["runs", "."], 0),
        (["runs", "/nonexistent/outputs"], 2),
        (["compare", "/nonexistent/run", "/nonexistent/other"], 2),
    ],
)
def test_help_shapes_and_config_errors_stay_tensorflow_free(tmp_path, argv, status):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CONFIG)
    argv = [str(bad) if a == "BAD" else a for a in argv]
    # In-process timing (interpreter start-up excluded): what a user waits for beyond Python.
    code = (
        "import sys, time\nstart = time.perf_counter()\nfrom autoencoder.cli import main\n"
        f"try:\n    status = main({argv!r})\nexcept SystemExit as exc:\n    status = exc.code\n"
        "print('tensorflow' in sys.modules, status, time.perf_counter() - start, file=sys.stderr)"
    )
    result = run_python(code)
    loaded, code_, seconds = result.stderr.strip().splitlines()[-1].split()
    assert (loaded, int(code_)) == ("False", status), result.stderr[-2000:]
    # A loose bound (about 0.3 s on an idle 2-core machine): it catches a heavy import such as
    # TensorFlow's, not a busy machine.
    assert float(seconds) < 3.0


def test_without_tensorflow_train_says_what_to_install_and_writes_nothing(tmp_path):
    # sys.modules[name] = None makes `import name` raise ImportError, as if not installed.
    code = (
        "import sys\nsys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "from autoencoder.cli import main\n"
        f"sys.exit(main(['train', 'configs/quickstart.yaml', '--set', 'output={tmp_path}']))"
    )
    result = run_python(code)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: TensorFlow cannot be imported (")
    assert result.stderr.rstrip().endswith(
        "install it: pip install tensorflow (or, in this project's folder, `pip install .`)"
    )
    assert list(tmp_path.iterdir()) == []


def test_another_keras_backend_is_one_line(tmp_path):
    result = cli(
        "train",
        "configs/quickstart.yaml",
        "--set",
        f"output={tmp_path}",
        timeout=120,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert_error(
        result,
        "KERAS_BACKEND is set to 'jax'; this tool runs on the TensorFlow backend: "
        "unset KERAS_BACKEND or set it to tensorflow",
    )
    assert list(tmp_path.iterdir()) == []


def test_cli_commands_are_a_table_of_short_functions():
    from autoencoder import cli

    tree = ast.parse((PACKAGE / "cli.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name, (_, function, summary, _) in cli.COMMANDS.items():
        body = functions[function.__name__]
        assert body.end_lineno - body.lineno < 15, f"{name}: keep command functions short"
        assert summary, name
    assert set(cli.build_parser()._subparsers._group_actions[0].choices) == set(cli.COMMANDS)
