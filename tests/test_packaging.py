"""The wheel as a user gets it: its dependencies, and a plain ``pip install latentmim`` at work.

The wheel is built from the sources (``python -m build``), then:

* its metadata: the extras, and no optional package among the plain dependencies;
* pip resolves a no-extras install (``pip install --dry-run --report``) without TensorBoard,
  matplotlib, scikit-learn or SciPy;
* installed into a fresh venv that sees exactly the packages such an install brings (taken from
  this environment, so torch is not downloaded again), ``latentmim pretrain --help``, a few
  training steps, ``latentmim export``, ``latentmim.load_encoder`` on the export and ``latentmim
  knn`` work, and an evaluation that needs an extra says which one in one line.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePath

import pytest

pytest.importorskip("build", reason="the wheel is built with 'build' (pip install -e '.[dev]')")
from packaging.requirements import Requirement  # noqa: E402  (build depends on packaging)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = {"tensorboard", "matplotlib", "scikit-learn", "scipy", "submitit", "wandb"}
EXTRAS = {"eval", "viz", "imagenet", "tensorboard", "slurm", "wandb", "all", "dev"}
TINY = ["embed_dim=32", "depth=2", "num_heads=2", "patch_size=4", "grid_size=4", "patch_gap=2", "num_vis=4",
        "decoder_embed_dim=16", "decoder_num_heads=2", "decoder_depth=1", "proj.mlp_dim=32", "proj.mlp_depth=2",
        "batch_size=8", "epochs=1", "warmup_epochs=0", "synthetic.num_train=48", "synthetic.num_val=24",
        "synthetic.image_size=24", "nn_train_images=48", "nn_val_images=24", "env.workers=0",
        "log.progress=false", "eval_freq=1", "baselines=false"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"),
                           str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = (tmp / "dist").glob("latentmim-*.whl")
    return built


def metadata(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return zf.read(name).decode().splitlines()


def base_requirements(wheel: Path) -> list[Requirement]:
    """``Requires-Dist`` of a no-extras install (markers evaluated here)."""
    reqs = [Requirement(line.split(":", 1)[1].strip()) for line in metadata(wheel) if line.startswith("Requires-Dist:")]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def test_the_wheel_declares_the_extras_and_no_optional_package(wheel: Path) -> None:
    lines = metadata(wheel)
    assert {line.split(":", 1)[1].strip() for line in lines if line.startswith("Provides-Extra:")} == EXTRAS
    base = {canonical(r.name) for r in base_requirements(wheel)}
    assert {"torch", "timm", "hydra-core", "safetensors"} <= base and not base & OPTIONAL
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "latentmim/configs/demo.yaml" in names and "latentmim/eval/suites.py" in names  # package data too


def test_pip_resolves_a_plain_install_without_the_optional_packages(wheel: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--report", str(report), str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {canonical(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert {"latentmim", "torch", "timm"} <= names
    assert not names & OPTIONAL, sorted(names & OPTIONAL)


def closure(requirements: list[Requirement]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions a set of requirements pulls in, dependencies included."""
    installed = {canonical(d.metadata["Name"]): d for d in importlib.metadata.distributions()}
    found: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        name, extras = canonical(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = installed[name]  # KeyError: this environment lacks a dependency of the wheel
        assert req.specifier.contains(dist.version, prereleases=True), (req, dist.version)
        found[name] = dist
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append(sub)
    return found


def link_packages(dists: dict[str, importlib.metadata.Distribution], into: Path) -> None:
    """Symlink the top-level files of ``dists`` (packages, modules, .dist-info) into ``into``."""
    into.mkdir()
    for dist in dists.values():
        for file in dist.files or []:
            top = PurePath(file).parts[0]
            if top in ("..", "__pycache__") or (into / top).exists():
                continue
            (into / top).symlink_to(Path(str(dist.locate_file(top))).resolve())


SMOKE = """
import importlib.util, sys, torch, latentmim
assert latentmim.__file__.startswith(sys.prefix), latentmim.__file__  # the installed wheel, not the checkout
missing = [m for m in ("matplotlib", "sklearn", "scipy", "tensorboard") if importlib.util.find_spec(m)]
assert not missing, missing
encoder = latentmim.load_encoder(sys.argv[1])
print("features", tuple(encoder(torch.randn(2, encoder.in_chans, 16, 16)).shape))
"""


def test_the_installed_wheel_trains_exports_and_loads_without_extras(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, env=env).stdout.strip()
    # What a plain install brings, from this environment (no download), seen through one folder.
    link_packages(closure(base_requirements(wheel)), tmp_path / "deps")
    Path(site, "deps.pth").write_text(f"{tmp_path / 'deps'}\n")

    def run(*args: str | Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=tmp_path)

    pip = [sys.executable, "-m", "pip", "--python", python]
    proc = run(*pip, "install", "--no-deps", "--no-index", "--quiet", wheel)
    assert proc.returncode == 0, proc.stderr
    proc = run(*pip, "check")  # every requirement of every visible distribution is met
    assert proc.returncode == 0, proc.stdout + proc.stderr

    cli = venv / "bin" / "latentmim"
    proc = run(cli, "pretrain", "--help")
    assert proc.returncode == 0 and "usage: latentmim pretrain" in proc.stdout, proc.stderr
    # log.tensorboard and log.curves keep their defaults (on): one notice each, the run goes on
    proc = run(cli, "pretrain", *TINY, f"output_dir={tmp_path / 'out'}", "job_name=run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "note: log.tensorboard needs TensorBoard: pip install 'latentmim[tensorboard]'" in proc.stderr
    assert "note: log.curves needs matplotlib: pip install 'latentmim[viz]'" in proc.stderr
    ckpt = tmp_path / "out" / "run" / "checkpoint_latest.pth"
    proc = run(cli, "export", f"checkpoint={ckpt}", f"output={tmp_path / 'export'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp_path / "smoke.py").write_text(SMOKE)
    proc = run(python, tmp_path / "smoke.py", tmp_path / "export")
    assert proc.returncode == 0 and "features (2, 32)" in proc.stdout, proc.stderr[-3000:]
    proc = run(cli, "knn", f"checkpoint={ckpt}", "k=3", "workers=0", "progress=false")
    assert proc.returncode == 0 and "nn_loo" in proc.stdout, proc.stderr[-3000:]
    proc = run(cli, "eval", "fewshot", f"checkpoint={ckpt}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "latentmim: error: eval fewshot needs scikit-learn: pip install 'latentmim[eval]'"
