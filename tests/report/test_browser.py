"""report.html in a real browser: headless Chromium renders it, and the screenshot shows the
overview at the top of the page.

Needs Chromium (Debian: ``apt-get install chromium``); skipped, saying so, without it. To look
at a report yourself: ``python tests/report/test_browser.py runs/DIR/report.html shot.png``.
"""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
WINDOW = (1280, 900)


def screenshot(page: Path, png: Path, window: tuple[int, int] = WINDOW) -> None:
    """Render ``page`` in headless Chromium and save the window's first screen to ``png``."""
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-dev-shm-usage", f"--window-size={window[0]},{window[1]}",
         f"--screenshot={png}", page.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                    "(Debian: apt-get install chromium)")
def test_chromium_renders_the_overview_on_the_first_screen(tmp_path, toy):
    from PIL import Image

    from metastep.report import RunDirectory, build_report, run_experiment

    experiment, _ = toy
    run_experiment(RunDirectory(tmp_path), experiment, experiment.budget("smoke"),
                   progress=False)
    build_report(tmp_path)
    png = tmp_path / "screen.png"
    screenshot(tmp_path / "report.html", png)
    image = Image.open(io.BytesIO(png.read_bytes())).convert("RGB")
    assert image.size == WINDOW
    # The verdict badge's grey (#e5e5e5) and the thumbnail's blue curve (matplotlib's first
    # colour, #1f77b4, or close to it) are drawn within the first screen.
    colors = {color for _, color in image.getcolors(maxcolors=WINDOW[0] * WINDOW[1])}
    assert (0xE5, 0xE5, 0xE5) in colors
    assert any(abs(r - 0x1F) + abs(g - 0x77) + abs(b - 0xB4) < 40 for r, g, b in colors)


if __name__ == "__main__":
    if CHROMIUM is None:
        sys.exit("headless Chromium is not installed (Debian: apt-get install chromium)")
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]),
               tuple(map(int, sys.argv[3].split("x"))) if len(sys.argv) > 3 else WINDOW)
