"""A real browser on the app: Debian's headless Chromium driven by Selenium.

Opens the page, uploads a synthetic scene, waits for the label and the map,
checks the top country against a direct `predict` of the same file, saves a
screenshot, and checks from Chromium's own network log that the page fetched
nothing but the app itself. `.ci/run` installs `chromium` and
`chromium-driver` with apt-get when they are missing.
"""

import json
import pathlib
import shutil
import sys

import pytest
from app_helpers import ThreadedServer, save_models, scene_files

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "docs"))
from app_screenshot import headless_chromium  # noqa: E402  (README's screenshot: the same browser)

from keras_geo import predict
from keras_geo.app import server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
# The app itself, inline data, and Chromium's own pages (its start page loads chrome:// and,
# in newer Chromium, chrome-untrusted://new-tab-page/...).
LOCAL_SCHEMES = (
    "http://127.0.0.1:",
    "ws://127.0.0.1:",
    "data:",
    "blob:",
    "about:",
    "chrome:",
    "chrome-untrusted:",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    run_dir, _ = save_models(root)
    predictor = predict.load_predictor(run_dir)
    state = server.make_state(predictor, model_name="tiny-run", top_k=3)
    app_server = ThreadedServer(server.build_app(state))
    yield app_server, predictor, scene_files(root, count=2, size=128)
    app_server.stop()
    state.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = headless_chromium(
        tmp_path_factory.mktemp("chromium-profile"),
        window_size="1280,1600",
        chromium=CHROMIUM,
        chromedriver=CHROMEDRIVER,
        capabilities={"goog:loggingPrefs": {"performance": "ALL"}},
    )
    yield driver
    driver.quit()


def requested_urls(driver):
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_upload_shows_label_map_and_heatmap(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    app_server, predictor, scenes = served
    expected = predict.predict_file(predictor, scenes[1], top_k=3)["countries"][0]
    browser.get(app_server.url + "/")
    wait = WebDriverWait(browser, 60)
    upload = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#screenshot input[type=file]"))
    )
    upload.send_keys(str(scenes[1]))
    top = (By.CSS_SELECTOR, "#label .output-class")  # gr.Label's headline: the top class.
    wait.until(ec.text_to_be_present_in_element(top, expected))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#worldmap img")))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#heatmap img")))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#distances"), "Top guess"))
    assert browser.find_element(*top).text.strip() == expected
    shot = tmp_path / "app.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    urls = requested_urls(browser)
    assert any(url.startswith(app_server.url) for url in urls)
    outside = [url for url in urls if not url.startswith(LOCAL_SCHEMES)]
    assert outside == [], f"the page fetched from outside the app: {outside[:5]}"


def test_api_docs_page_renders_both_routes_from_the_app_alone(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    app_server = served[0]
    requested_urls(browser)  # Drops the log of the earlier pages.
    browser.get(app_server.url + server.DOCS_URL)
    paths = (By.CSS_SELECTOR, ".opblock-summary-path")  # Swagger UI's route headings.
    WebDriverWait(browser, 60).until(ec.text_to_be_present_in_element(paths, "/api/"))
    shown = sorted(element.text for element in browser.find_elements(*paths))
    assert shown == ["/api/health", "/api/predict"]
    shot = tmp_path / "api-docs.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    outside = [url for url in requested_urls(browser) if not url.startswith(LOCAL_SCHEMES)]
    assert outside == [], f"the docs page fetched from outside the app: {outside[:5]}"


def test_a_bad_upload_shows_one_line_without_server_paths(served, browser, tmp_path):
    """A text file, then a 13000x13000 PNG: the page shows keras-geo's one line, no path."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import bombs

    app_server, _, _ = served
    notes, huge = tmp_path / "notes.png", tmp_path / "huge.png"
    notes.write_text("not pixels\n")
    huge.write_bytes(bombs.png(13000, 13000))
    for path, words in [(notes, "not an image"), (huge, "too large: 13000x13000 pixels")]:
        browser.get(app_server.url + "/")
        wait = WebDriverWait(browser, 60)
        upload = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#screenshot input[type=file]"))
        )
        upload.send_keys(str(path))
        toast = (By.XPATH, f"//*[contains(text(), '{words}')]")
        shown = wait.until(ec.visibility_of_element_located(toast)).text.strip()
        browser.save_screenshot(str(tmp_path / f"{path.stem}.png"))
        print(f"screenshot: {tmp_path / f'{path.stem}.png'}")
        assert shown.startswith(words) and "\n" not in shown, repr(shown)
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "/tmp" not in page and str(tmp_path) not in page
        assert "Could not preprocess" not in page and "Traceback" not in page
