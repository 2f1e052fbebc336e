"""`budget-replay plot` and `run --svg/--html`: every format renders and parses back."""

from __future__ import annotations

import struct
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.plot import parse_compare

SAMPLES = Path(__file__).resolve().parent.parent / "traces" / "samples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Tables(HTMLParser):
    """Collects table header cells and the visible text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.rows = 0
        self.text: list[str] = []
        self.svg = False
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._in_th = tag == "th"
        self.rows += tag == "tr"
        self.svg |= tag == "svg"

    def handle_endtag(self, tag: str) -> None:
        self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.headers.append(data)
        self.text.append(data)


def _plot(tmp_path: Path, name: str, *args: str, trace: str = "stranded.jsonl") -> Path:
    out = tmp_path / name
    res = CliRunner().invoke(cli, ["plot", str(SAMPLES / trace), "-o", str(out),
                                   "--no-progress", *args])
    assert res.exit_code == 0, res.output
    return out


def test_png_has_the_signature_and_a_sensible_size(tmp_path: Path) -> None:
    data = _plot(tmp_path, "t.png", trace="leak.jsonl").read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert 800 <= width <= 2000 and 400 <= height <= 4000
    assert 10_000 < len(data) < 400_000


def test_svg_parses_as_xml(tmp_path: Path) -> None:
    root = ET.parse(_plot(tmp_path, "t.svg")).getroot()
    assert root.tag.endswith("svg")
    texts = "".join(root.itertext())
    assert "stranded" in texts


def test_pdf_is_a_pdf(tmp_path: Path) -> None:
    data = _plot(tmp_path, "t.pdf", trace="leak.jsonl").read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]


def test_html_page_has_the_summary_table_and_the_picture(tmp_path: Path) -> None:
    page = _Tables()
    page.feed(_plot(tmp_path, "t.html").read_text())
    assert "stranded" in page.headers and "peak/high" in page.headers
    assert page.rows == 2  # header + one scope
    assert page.svg
    text = " ".join(page.text)
    assert "default/redo-burst / redo" in text and "1.17×" in text


def test_compare_overlays_a_second_configuration(tmp_path: Path) -> None:
    out = _plot(tmp_path, "c.html", "--compare", "small=--max-wake 8", "--compare",
                "--global-high 256MiB", "--top", "3")
    page = _Tables()
    page.feed(out.read_text())
    text = " ".join(page.text)
    assert page.rows == 4
    assert "small" in text and "--global-high 256MiB" in text
    assert "256.0 MiB / 128.0 MiB" in text


def test_same_trace_same_picture(tmp_path: Path) -> None:
    a = _plot(tmp_path, "a.svg", trace="leak.jsonl")
    b = _plot(tmp_path, "b.svg", trace="leak.jsonl")
    assert a.read_bytes() == b.read_bytes()


def test_parse_compare_forms() -> None:
    assert parse_compare("--max-wake 8") == ("--max-wake 8", ["--max-wake", "8"])
    assert parse_compare("small=--max-wake 8") == ("small", ["--max-wake", "8"])
    assert parse_compare(" --global-high=64MiB ") == ("--global-high=64MiB",
                                                       ["--global-high=64MiB"])


@pytest.mark.parametrize("args, words", [
    (["-o", "x.gif"], ".png, .svg, .pdf or .html"),
    (["-o", "x.png", "--compare", "--max-wake nope"], "--compare"),
    (["-o", "x.png", "--compare", "--bogus 1"], "--compare"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    res = CliRunner().invoke(cli, ["plot", str(SAMPLES / "leak.jsonl"), *args])
    assert res.exit_code == 2
    assert words in res.output


def test_missing_matplotlib_is_one_line_and_exit_2(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    res = CliRunner().invoke(cli, ["plot", str(SAMPLES / "leak.jsonl"), "-o",
                                   str(tmp_path / "t.png")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pip install 'budget-replay[plot]'" in lines[0]
    assert not (tmp_path / "t.png").exists()


def test_run_saves_svg_and_html_of_the_report(tmp_path: Path) -> None:
    svg, page = tmp_path / "r.svg", tmp_path / "r.html"
    res = CliRunner().invoke(cli, ["run", str(SAMPLES / "handoff.jsonl"), "--no-progress",
                                   "--svg", str(svg), "--html", str(page)])
    assert res.exit_code == 0, res.output
    assert "global in-flight over" in res.output  # the sparkline
    ET.parse(svg)
    parsed = _Tables()
    parsed.feed(page.read_text())
    text = "".join(parsed.text)
    for table in ("Replay of", "Effective configuration", "global in-flight over",
                  "Blocking: dispatchers by blocked time", "Wake order", "Watermark crossings"):
        assert table in text
    assert "default/handoff / cloudstorage" in text


def test_run_without_the_files_still_shows_the_sparkline() -> None:
    res = CliRunner().invoke(cli, ["run", str(SAMPLES / "mixed.jsonl"), "--no-progress"])
    assert res.exit_code == 0
    assert "default/tour / cloudstorage: global in-flight over" in res.output
    assert "default/mysql / mysql: global in-flight" not in res.output
