#!/usr/bin/env python3
"""Makes the console screenshots in docs/console/ (not run in CI).

Starts `mcpg-auth serve` on SQLite in a temporary directory, fills it through the API (a few
orgs with licenses ending at different times, a fleet whose gateways federated or did not),
then drives headless Chromium over WebDriver (Debian's chromedriver on a free port; nothing
leaves loopback) to sign in with the bootstrap token and capture the orgs, fleet and audit
pages.

Usage: docs/console/screenshots.py [MCPG_AUTH_BINARY]   (default target/dist/mcpg-auth)
"""
import base64, json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/dist/mcpg-auth")
OUT = os.path.join(ROOT, "docs/console")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def wait(url):
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {url}")


data_dir = tempfile.mkdtemp()
port = free_port()
base = f"http://127.0.0.1:{port}"
server = subprocess.Popen(
    [BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, "--issuer", base,
     "--bootstrap-token-file", f"{data_dir}/bootstrap.token"],
    env={**os.environ, "MCPG_OPS_LISTEN": "127.0.0.1:0"},
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
driver_port = free_port()
driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={driver_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
try:
    wait(f"{base}/readyz")
    admin = open(f"{data_dir}/bootstrap.token").read().strip()
    auth = {"authorization": f"Bearer {admin}"}
    api = lambda method, path, body=None: call(method, base + path, body, auth)
    for slug, tier, days in [("acme", "enterprise", 365), ("globex", "team", 12),
                             ("initech", "team", 27), ("umbrella", "enterprise", 90)]:
        api("POST", "/v1/orgs", {"slug": slug, "display_name": slug.title()})
        api("PUT", f"/v1/orgs/{slug}/license", {"tier": tier, "valid_for_days": days})
    api("POST", "/v1/orgs/acme/workspaces", {"slug": "platform"})
    api("POST", "/v1/orgs/acme/workspaces/platform/environments", {"slug": "prod"})
    place = "/v1/orgs/acme/workspaces/platform/environments/prod/gateways"
    for i in range(8):
        gateway = api("POST", place, {"name": f"edge-{i + 1}"})
        if i < 5:  # these federated; the others never did
            call("POST", f"{base}/v1/federation/token", {"instance": f"pod-{i + 1}"},
                 {"authorization": f"Bearer {gateway['credential']}"})
    time.sleep(11)  # the service writes gateways' last token times every 10 s
    wait(f"http://127.0.0.1:{driver_port}/status")
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,800", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-pings",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9", f"--user-data-dir={tempfile.mkdtemp()}"]
    wd = f"http://127.0.0.1:{driver_port}"
    session = call("POST", f"{wd}/session", {"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}})["value"]["sessionId"]
    s = f"{wd}/session/{session}"
    go = lambda path: call("POST", f"{s}/url", {"url": base + path})
    find = lambda css: call("POST", f"{s}/element", {"using": "css selector", "value": css})["value"]
    element = lambda found: next(iter(found.values()))
    go("/console/sign-in")
    call("POST", f"{s}/element/{element(find('#token'))}/value", {"text": admin})
    button = element(find('form[action="/console/sign-in"] button'))
    call("POST", f"{s}/element/{button}/click", {})
    time.sleep(0.5)
    for name, path in [("orgs", "/console/orgs?sort=license_end"),
                       ("fleet", "/console/orgs/acme/workspaces/platform/environments/prod"),
                       ("audit", "/console/orgs/acme/audit")]:
        go(path)
        time.sleep(0.5)
        png = base64.b64decode(call("GET", f"{s}/screenshot")["value"])
        with open(os.path.join(OUT, f"{name}.png"), "wb") as f:
            f.write(png)
        print(f"docs/console/{name}.png")
    call("DELETE", s)
finally:
    os.killpg(driver.pid, signal.SIGTERM)
    server.terminate()
