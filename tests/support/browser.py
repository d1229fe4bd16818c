"""A real browser looks at a page: headless Chromium (Debian's `chromium` package) takes a
screenshot and reports what the page said on its console.

Also `python -m tests.support.browser PAGE PNG [WIDTH HEIGHT]`: the README's screenshot.
"""

import io
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


def find_browser() -> str | None:
    return next((found for name in NAMES if (found := shutil.which(name))), None)


@dataclass(frozen=True)
class Rendered:
    png: bytes
    console: list[str]  # every console message: errors, and a policy's blocked loads


def render(page: Path, width: int, height: int, dark: bool = False) -> Rendered:
    """One run of the browser: the page at this window size, in the light or dark scheme."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium on PATH (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="tf-release-browser-") as tmp:
        shot = Path(tmp) / "shot.png"
        done = subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={tmp}/profile",
                f"--blink-settings=preferredColorScheme={0 if dark else 1}",
                f"--window-size={width},{height}",
                f"--screenshot={shot}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0 or not shot.exists():
            raise RuntimeError(f"{browser} failed ({done.returncode}): {done.stderr[-2000:]}")
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        return Rendered(shot.read_bytes(), console)


def colours(png: bytes) -> dict[tuple[int, int, int], int]:
    """Each distinct colour of a screenshot and how many pixels have it (a blank page: one)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    found = image.getcolors(maxcolors=image.width * image.height) or []
    return {colour: count for count, colour in found}


def main(argv: list[str]) -> int:
    page, target = Path(argv[0]), Path(argv[1])
    width, height = (int(argv[2]), int(argv[3])) if len(argv) > 3 else (1280, 1000)
    rendered = render(page, width, height)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(rendered.png)
    for line in rendered.console:
        print(line, file=sys.stderr)
    print(f"Wrote {target} ({width} by {height}) from {page}")
    return 1 if rendered.console else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
