"""Every code example in the documentation runs, and every link in it points somewhere real.

What is collected: the fenced blocks of ``docs/**/*.md`` and ``README.md``.

* A block opened with ```` ```python ```` is **run**. The blocks of one file
  run in order in one shared namespace (a later block may use an earlier
  block's variables), inside a fresh temporary working directory, so files an
  example writes land there. A failing block's traceback names the Markdown
  file and the line inside it.
* A block opened with ```` ```python no-run ```` is shown but not run (Keras
  code quoted for comparison, code that needs the ImageNet download); it must
  still be valid Python, so it is compiled.
* Other blocks (``text``, ``bash``...) are left alone.

Links: every relative link ``[text](path)`` must name an existing file, and a
link whose text is a code name pointing at a ``.py`` file -- e.g.
``[`conv2d_backward`](../../numvgg/ops/conv.py)`` or
``[`Trainer.compile`](../../numvgg/models/training.py)`` -- must name things
that file defines (``def``, ``class``, or an assignment at module or class
level), so the docs cannot keep mentioning a function after it was renamed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import NamedTuple

import matplotlib
import pytest

matplotlib.use("Agg")  # examples that plot must not need a screen

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]

FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<ticks>`{3,})(?P<info>[^`]*)$")
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")


class Block(NamedTuple):
    """One fenced code block: where it starts and what it holds."""

    path: Path
    line: int  # 1-based line of the first code line
    end: int  # 1-based line of the closing fence
    info: str  # the info string after the backticks, e.g. "python no-run"
    code: str

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def runnable(self) -> bool:
        return self.language == "python" and "no-run" not in self.info.split()[1:]


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order.

    A block ends at a fence of at least as many backticks as it opened with;
    its lines lose the opening fence's indentation (CommonMark's rule).
    """
    blocks, open_fence = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if open_fence is None:
            if match:
                open_fence = (match["ticks"], len(match["indent"]), match["info"].strip(), number + 1, [])
            continue
        ticks, indent, info, start, lines = open_fence
        if match and match["ticks"].startswith(ticks) and not match["info"].strip():
            blocks.append(Block(path, start, number, info, "\n".join(lines) + "\n"))
            open_fence = None
            continue
        lines.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
    if open_fence is not None:
        raise AssertionError(f"{path}:{open_fence[3] - 1}: code fence never closed")
    return blocks


def _compile(block: Block):
    # Blank lines before the code make tracebacks report the Markdown line numbers.
    source = "\n" * (block.line - 1) + block.code
    return compile(source, str(block.path), "exec")


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# The tutorials train the recipe's model (tens of seconds each on 2 cores).
SLOW_DOCS = {"docs/tutorial.md", "docs/zh/tutorial.md", "docs/architecture.md"}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if _id(p) in SLOW_DOCS else p for p in DOC_FILES],
    ids=_id,
)
def test_examples_run(path, tmp_path, monkeypatch):
    """Run the file's python blocks in order, sharing one namespace."""
    blocks = fenced_blocks(path)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for block in blocks:
        if block.language != "python":
            continue
        code = _compile(block)  # no-run blocks must at least be valid Python
        if block.runnable:
            exec(code, namespace)


def test_every_doc_file_is_collected_and_has_examples():
    """Guard the collector itself: the docs exist and it finds runnable blocks in them."""
    names = {_id(p) for p in DOC_FILES}
    for expected in (
        "docs/index.md",
        "docs/architecture.md",
        "docs/tolerances.md",
        "docs/tutorial.md",
        "docs/zh/tutorial.md",
        "README.md",
    ):
        assert expected in names
    runnable = [b for p in DOC_FILES for b in fenced_blocks(p) if b.runnable]
    assert len(runnable) >= 20, f"only {len(runnable)} runnable blocks found"


def test_fence_parser_on_known_text(tmp_path):
    """The parser keeps order, info strings, indentation rules and line numbers."""
    md = tmp_path / "x.md"
    md.write_text(
        "intro\n```python\na = 1\n```\n\n  ```python no-run\n  import keras\n  ```\n"
        "````text\n```\n````\n```python\nb = a + 1\n```\n",
        encoding="utf-8",
    )
    blocks = fenced_blocks(md)
    assert [(b.line, b.end, b.info, b.code) for b in blocks] == [
        (3, 4, "python", "a = 1\n"),
        (7, 8, "python no-run", "import keras\n"),
        (10, 11, "text", "```\n"),
        (13, 14, "python", "b = a + 1\n"),
    ]
    assert [b.runnable for b in blocks] == [True, False, False, True]


def _defined_names(py_file: Path) -> set[str]:
    tree = ast.parse(py_file.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for body in bodies:  # constants such as ARCH, class attributes
        for node in body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _links(path: Path):
    """``(line number, text, target)`` of every Markdown link outside code blocks."""
    in_code = {n for b in fenced_blocks(path) for n in range(b.line - 1, b.end + 1)}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if number in in_code:
            continue
        for match in LINK.finditer(line):
            yield number, match["text"], match["target"]


def github_anchors(path: Path) -> set[str]:
    """The ``#anchors`` GitHub makes from a Markdown file's headings: lower case,
    punctuation dropped (letters, digits, ``_``, ``-`` and spaces kept), spaces to ``-``."""
    in_code = {n for b in fenced_blocks(path) for n in range(b.line - 1, b.end + 1)}
    anchors = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and number not in in_code:
            anchors.add(re.sub(r"[^\w\- ]", "", heading[1].lower()).replace(" ", "-"))
    return anchors


def link_problems(path: Path) -> list[str]:
    """Broken relative links of one Markdown file, one message per problem."""
    problems = []
    for number, text, target in _links(path):
        if re.match(r"^[a-z]+:", target):
            continue  # web addresses
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{path.name}:{number}: link target {target!r} does not exist")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in github_anchors(resolved):
            problems.append(f"{path.name}:{number}: {resolved.name} has no heading for #{anchor}")
        name = re.fullmatch(r"`([A-Za-z_][A-Za-z_0-9.]*)(?:\(\))?`", text)
        if name and resolved.suffix == ".py" and not name[1].endswith(".py"):  # `conv.py` names the file
            missing = [part for part in name[1].split(".") if part not in _defined_names(resolved)]
            if missing:
                problems.append(f"{path.name}:{number}: {target} defines no {missing[0]!r}")
    return problems


@pytest.mark.parametrize("path", DOC_FILES, ids=_id)
def test_links_point_at_real_files_and_names(path):
    problems = link_problems(path)
    assert not problems, "\n".join(problems)


def test_link_checker_catches_missing_files_and_renamed_functions(tmp_path):
    (tmp_path / "mod.py").write_text(
        "def present():\n    pass\nCONSTANT = 1\n"
        "class Box:\n    size = 2\n    def open(self):\n        pass\n",
        encoding="utf-8",
    )
    md = tmp_path / "page.md"
    md.write_text(
        "[`present`](mod.py) [`CONSTANT`](mod.py#x) [site](https://example.org)\n"
        "[`Box.open()`](mod.py) [`size`](mod.py) [`Box.close`](mod.py) [`mod.py`](mod.py)\n"
        "[`absent()`](mod.py) [gone](nowhere.md)\n"
        "```python\n[`ignored`](in_code.py)\n# Not a heading\n```\n"
        "## The `'same'` rule: 2x2\n[up](#the-same-rule-2x2) [bad](page.md#not-a-heading)\n",
        encoding="utf-8",
    )
    assert link_problems(md) == [
        "page.md:2: mod.py defines no 'close'",
        "page.md:3: mod.py defines no 'absent'",
        "page.md:3: link target 'nowhere.md' does not exist",
        "page.md:9: page.md has no heading for #not-a-heading",
    ]


# -- the Chinese pages mirror the English ones ------------------------------------------------
DOCS = ROOT / "docs"
ZH = DOCS / "zh"
# English pages whose Chinese version is still being written (by other helpers or the
# coordinator). Their code blocks are still compared once the Chinese page exists. Empty
# this list as the pages arrive; it must not grow.
ZH_PENDING: set = set()
# docs/examples/ holds a teacher's exercise folder (its text.md and text.zh.md side by
# side, the format the grader reads), not documentation pages.
EXAMPLES = DOCS / "examples"
ENGLISH_PAGES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.md")
    if ZH not in p.parents and EXAMPLES not in p.parents
)


def _block_signature(path: Path) -> list[tuple[str, str]]:
    """What must match between the two languages: each block's info string and code."""
    return [(b.info, b.code) for b in fenced_blocks(path)]


@pytest.mark.parametrize("page", ENGLISH_PAGES)
def test_every_english_page_has_a_chinese_page_with_the_same_code(page):
    """docs/zh/<page> exists and its fenced blocks are the English page's, in the same order
    (prose is translated; code, and so what the docs test runs, is not)."""
    zh = ZH / page
    if not zh.exists():
        assert page in ZH_PENDING, (
            f"docs/{page} has no Chinese version: write docs/zh/{page} with the same code blocks"
        )
        return
    english, chinese = _block_signature(DOCS / page), _block_signature(zh)
    assert len(chinese) == len(english), (
        f"docs/zh/{page} has {len(chinese)} code blocks, docs/{page} has {len(english)}"
    )
    for k, (en, cn) in enumerate(zip(english, chinese), start=1):
        assert cn == en, (
            f"code block {k} of docs/zh/{page} differs from docs/{page}:\n"
            f"--- English ---\n{en[1]}--- Chinese ---\n{cn[1]}"
        )


def test_no_chinese_page_without_an_english_one():
    orphans = [
        p.relative_to(ZH).as_posix() for p in ZH.rglob("*.md") if not (DOCS / p.relative_to(ZH)).exists()
    ]
    assert not orphans, f"docs/zh pages with no English page: {orphans}"


def test_chinese_pages_link_to_their_english_page():
    """Each Chinese page starts with a link to its English version (and is run like it:
    test_examples_run collects docs/zh/**/*.md too)."""
    for path in ZH.rglob("*.md"):
        english = DOCS / path.relative_to(ZH)
        targets = [(path.parent / t.partition("#")[0]).resolve() for _, _, t in _links(path)]
        assert english.resolve() in targets, f"{_id(path)} does not link to {_id(english)}"
    assert any(_id(p).startswith("docs/zh/layers/") for p in DOC_FILES)


def test_the_mirror_check_catches_a_changed_block(tmp_path):
    en, zh = tmp_path / "en.md", tmp_path / "zh.md"
    en.write_text("Text.\n```python\nx = 1  # one\n```\n", encoding="utf-8")
    zh.write_text("文字。\n```python\nx = 1  # 一\n```\n", encoding="utf-8")
    assert _block_signature(en) != _block_signature(zh)  # a translated comment counts
    zh.write_text("文字。\n```python\nx = 1  # one\n```\n", encoding="utf-8")
    assert _block_signature(en) == _block_signature(zh)
