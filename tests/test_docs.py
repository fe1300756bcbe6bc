"""The docs' tables say what their sources say: results files, the env's docstring, the
presets and the agent's settings (``docs/render.py`` writes them; this checks them)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import ROOT


def render_module():
    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_page_says_what_its_sources_say():
    render = render_module()
    assert render.pages(), "no pages found"
    assert render.out_of_date() == [], "run python docs/render.py"


def test_a_figure_edited_by_hand_is_found(tmp_path):
    render = render_module()
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "results.md"
    # the results page's quick-preset block alone: every block of the page renders the same way
    block = next(
        match.group(0)
        for match in render.BLOCK.finditer((ROOT / "docs" / "results.md").read_text())
        if match.group(2).strip() == "comparison docs/results/quick"
    )
    row = next(line for line in block.splitlines() if line.startswith("| cosine |"))
    page.write_text(block.replace(row, row.replace("| cosine |", "| cosine | 0.999 |", 1), 1))
    assert render.out_of_date(tmp_path) == [page]
    page.write_text(render.render(page.read_text()))  # rendering mends it
    assert render.out_of_date(tmp_path) == []


def test_a_block_of_an_unknown_source_is_refused():
    render = render_module()
    with pytest.raises(ValueError, match="unknown block 'typo'"):
        render.render("<!-- render: typo -->\n<!-- end -->")
