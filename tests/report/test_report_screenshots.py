"""The report page in a real browser (headless Chromium): screenshots at 1000 and 1400 px have
that width, and nothing on the laid-out page is cut off at the right edge (wide tables scroll
inside their wrapper). Skipped where Chromium is not installed."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import report_screenshots as shots  # noqa: E402

CHROMIUM = shots.find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    pytest.importorskip("matplotlib")
    return shots.build_report(tmp_path_factory.mktemp("shots"), n_boot=100)


@pytest.mark.parametrize("width", shots.WIDTHS)
def test_screenshot_has_the_width_and_nothing_is_cut(page, tmp_path, width):
    from PIL import Image

    png = shots.screenshot(CHROMIUM, page, tmp_path / f"page-{width}.png", width, height=1200)
    with Image.open(png) as im:
        assert im.size == (width, 1200)
        # the page is drawn (not a blank or error page): many distinct colours at the top
        assert len(im.convert("RGB").resize((200, 240)).getcolors(1 << 16) or []) > 20
    check = shots.layout_check(CHROMIUM, page, width)
    assert check["viewport"] == width
    assert check["tables"] > 10 and check["unwrapped_tables"] == 0
    assert check["n_cut"] == 0, check["cut"]
    assert not check["page_scrolls_sideways"] and check["images_wider_than_page"] == 0
    if width == 1000:  # PAN-X's per-language table (48 languages x 5 systems) is wider
        assert check["scrolling_tables"] >= 1


def test_layout_check_finds_a_cut_table(tmp_path):
    """The check can fail: a wide table outside any wrapper is reported as cut."""
    row = "".join(f"<td>+{i}.00 [+0.{i}1, +1.{i}9]</td>" for i in range(14))
    html = tmp_path / "cut.html"
    html.write_text(
        "<!DOCTYPE html><html><head><style>td{white-space:nowrap}</style></head><body>"
        f"<table><tr>{row}</tr></table></body></html>",
        encoding="utf-8",
    )
    check = shots.layout_check(CHROMIUM, html, 1000)
    assert check["n_cut"] > 0 and check["page_scrolls_sideways"]
    assert check["unwrapped_tables"] == 1
