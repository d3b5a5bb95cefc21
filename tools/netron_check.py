"""Open an .om in Netron in headless Chromium and save screenshots (a manual check, not a test).

Needs: pip install netron playwright; Debian's chromium (/usr/bin/chromium). Run:
    python tools/netron_check.py MODEL.om OUT_DIR
It serves MODEL.om with the netron package, accepts Netron's cookie notice, screenshots the graph
(graph.png), clicks the first op that has constant inputs and screenshots the sidebar with the
constant values Netron read from WEIGHTS_DATA (sidebar.png), and prints which op types it saw.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def main(model: str, out_dir: str, op_to_click: str = "MatMulV2") -> None:
    import netron
    from playwright.sync_api import sync_playwright

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    address = netron.start(model, address=("localhost", 8765), browse=False)
    url = (
        f"http://{address[0]}:{address[1]}/"
        if isinstance(address, tuple)
        else "http://localhost:8765/"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_timeout(2000)
        page.get_by_text("Accept").click(timeout=5000)
        page.wait_for_timeout(3000)
        page.screenshot(path=str(out / "graph.png"))
        html = page.content()
        print({op: op in html for op in ("Data", op_to_click, "NetOutput")})
        page.get_by_text(op_to_click).first.click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "sidebar.png"))
        browser.close()
    netron.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
