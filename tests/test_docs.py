"""The docs stay true: links, paths, anchors and module names resolve; quick README commands run.

* every relative link and every repository path named in ``README.md`` and ``docs/*.md`` exists;
* every ``docs/PAGE.md#anchor`` cited in the code, configs, tests or docs names a heading that exists;
* every module path ``latentmim.x.y`` named in a docstring or comment imports;
* the README's commands that take seconds (``--help``, ``--cfg job``) and its Python snippets run.

The checkers are plain functions, so a test can show each of them failing on a broken example.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = [p for pattern in ("src/**/*.py", "src/**/*.yaml", "tests/**/*.py", "tools/*.py", "benchmarks/*.py",
                          "benchmarks/*.sh", "hubconf.py", "launcher.py")
        for p in ROOT.glob(pattern) if "egg-info" not in str(p) and p.name != "test_docs.py"]

LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target)
# repository paths written in backticks: `docs/x.md`, `src/latentmim/...`, `benchmarks/...`, `tools/...`
PATH = re.compile(r"`((?:docs|src|benchmarks|tools|tests|configs)/[\w./-]+)`")
ANCHOR_CITE = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")
MODULE = re.compile(r"\blatentmim(?:\.[A-Za-z_]\w*)+")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (fenced code blocks skipped)."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def _prose(text: str) -> str:
    """The text outside fenced code blocks (commands there name example files, not repository files)."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


def broken_links(page: Path) -> list[str]:
    """Relative links of a Markdown page whose file or anchor does not exist."""
    bad = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            bad.append(f"{page.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{page.name}: {target} (no such heading)")
    return bad


def missing_paths(page: Path) -> list[str]:
    """Repository paths named in a page's prose (in backticks) that do not exist."""
    prose = _prose(page.read_text())
    return [f"{page.name}: {p}" for p in PATH.findall(prose)
            if not (ROOT / p).exists() and not (ROOT / "src" / "latentmim" / p).exists()
            and "*" not in p and "PAGE" not in p]


def broken_anchor_cites(path: Path) -> list[str]:
    """``docs/PAGE.md#anchor`` references in a file whose page or heading does not exist."""
    bad = []
    for page, anchor in ANCHOR_CITE.findall(path.read_text(errors="replace")):
        dest = ROOT / "docs" / page
        if not dest.is_file() or anchor not in anchors(dest):
            bad.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: docs/{page}#{anchor}")
    return bad


def unimportable_modules(text: str) -> list[str]:
    """``latentmim.x.y`` names in a text that are neither a module nor an attribute of one."""
    bad = []
    for name in sorted(set(MODULE.findall(text))):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                bad.append(name)
            break
        else:
            bad.append(name)
    return bad


# ------------------------------------------------------------------ the repository


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_paths_of_every_page_exist(page):
    assert broken_links(page) + missing_paths(page) == []


def test_every_cited_docs_anchor_exists():
    assert [bad for path in [*CODE, *PAGES] for bad in broken_anchor_cites(path)] == []


def test_every_module_named_in_the_code_and_docs_imports():
    texts = [p.read_text(errors="replace") for p in [*CODE, *PAGES] if p.suffix in (".py", ".md")]
    assert unimportable_modules("\n".join(texts)) == []


def _readme_commands() -> list[str]:
    """``latentmim ... --help`` and ``--cfg job`` lines of the README's shell blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("latentmim ") and ("--help" in line or "--cfg job" in line)]


@pytest.mark.parametrize("command", _readme_commands())
def test_the_readmes_quick_commands_run(command):
    args = command.split()[1:]
    proc = subprocess.run([sys.executable, "-m", "latentmim.cli.main", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_the_readmes_python_snippets_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README shows the Python API"
    for code in blocks:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                              cwd=tmp_path)
        assert proc.returncode == 0, code + "\n" + proc.stderr[-3000:]


# ------------------------------------------------------------------ the checkers can fail


def test_the_checkers_find_what_is_broken(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    page.write_text("# Title\n\nSee [ok](other.md#a-section), [gone](missing.md), [bad anchor](other.md#nope),\n"
                    "[self](#title) and the file `docs/no_such_page.md`.\n\n```bash\ncat `docs/x.md`\n```\n")
    assert broken_links(page) == ["page.md: missing.md (no such file)", "page.md: other.md#nope (no such heading)"]
    assert missing_paths(page) == ["page.md: docs/no_such_page.md"]
    code = tmp_path / "code.py"
    code.write_text("# see docs/method.md#latent-mim and docs/method.md#no-such-heading\n")
    assert broken_anchor_cites(code) == [f"{code}: docs/method.md#no-such-heading"]
    assert unimportable_modules("latentmim.interop.load.load_encoder and latentmim.eval.features") == \
        ["latentmim.eval.features"]
    assert slug("`latentmim eval finetune`") == "latentmim-eval-finetune"
    assert slug("Why 40k images x 10 epochs") == "why-40k-images-x-10-epochs"
