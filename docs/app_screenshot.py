"""Take README's screenshot of `keras-geo app` with Debian's headless Chromium.

    python docs/app_screenshot.py --model runs/demo [--out docs/app.png] [--country Japan]
    python docs/app_screenshot.py --image shot.jpg --out page.png   # the bundled model

Starts the app on a free port (`--model`, or the bundled model without it),
uploads `--image` or one synthetic scene of `--country` (drawn here, 256
px), waits for the label, map and heatmap, and saves the page.
"""

import argparse
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time


def headless_chromium(
    profile_dir,
    *,
    window_size,
    chromium="/usr/bin/chromium",
    chromedriver="/usr/bin/chromedriver",
    capabilities=None,
):
    """Debian's headless Chromium under Selenium: its own profile, no background traffic.

    `tests/test_app_browser.py` drives the app with the same browser.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={window_size}",
        f"--user-data-dir={profile_dir}",
    ):
        options.add_argument(flag)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--image", default=None, help="default: a synthetic scene")
    parser.add_argument("--out", default="docs/app.png")
    parser.add_argument("--country", default="Japan")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)

    import httpx
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tfds_geoguessr.geoguessr import synthetic

    work = pathlib.Path(tempfile.mkdtemp(prefix="keras-geo-shot-"))
    if args.image:
        scene = pathlib.Path(args.image).resolve()
    else:
        scene = work / f"{args.country.replace(' ', '_')}.png"
        rng = np.random.default_rng(args.seed)
        Image.fromarray(synthetic.draw_scene(args.country, rng, 256)).save(scene)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "keras_geo.cli.main", "app"]
    command += ["--model", args.model] if args.model else []
    app = subprocess.Popen(command + ["--port", str(port)], env=dict(os.environ))
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                httpx.get(url + "api/health", trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        driver = headless_chromium(work / "profile", window_size="1280,1250")
        try:
            driver.get(url)
            wait = WebDriverWait(driver, 120)
            field = (By.CSS_SELECTOR, "#screenshot input[type=file]")
            wait.until(ec.presence_of_element_located(field)).send_keys(str(scene))
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#worldmap img")))
            exported = not args.model or (pathlib.Path(args.model) / "saved_model.pb").exists()
            if not exported:  # An export (the bundled model too) has no Grad-CAM heatmap.
                wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#heatmap img")))
            time.sleep(2)  # Let the images finish painting.
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
    finally:
        app.terminate()
        app.wait(timeout=60)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
