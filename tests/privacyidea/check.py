#!/usr/bin/env python3
"""Drives the `countersign` command line against a real privacyIDEA 3.14 that
tests/privacyidea/run set up: PUSH enrollment from the link, an approved
sign-in (ACCEPT), a denied one, an "It wasn't me" (REJECT), a presence-mode
sign-in (a wrong option first), a second token from its QR code image, and a
TOTP token whose code privacyIDEA accepts. Exits 0 only when every check passed.
Runs with the venv's Python (requests comes with privacyIDEA)."""
import argparse
import base64
import json
import os
import subprocess
import sys

import requests

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--countersign", required=True)
ap.add_argument("--work", required=True)
args = ap.parse_args()
BASE = args.url.rstrip("/")
PUSH_PIN, TOTP_PIN = "1234", "5678"
http = requests.Session()
failures = []


def check(condition, what, detail=""):
    print(("  ok    " if condition else "  FAIL  ") + what + ("" if condition or not detail else f": {detail}"))
    if not condition:
        failures.append(what)
    return condition


def pi(method, path, **kw):
    response = http.request(method, BASE + path, timeout=30, **kw)
    return response.json()


admin = {"Authorization": pi("POST", "/auth", data={"username": "admin", "password": "adminpw"})["result"]["value"]["token"]}


def policy(name, scope, action):
    reply = pi("POST", f"/policy/{name}", headers=admin, json={"scope": scope, "action": action})
    assert reply["result"]["status"], reply


# PUSH enrollment needs these two; polling is allowed per authentication policy.
policy("push_enroll", "enrollment", {"push_firebase_configuration": "poll only", "push_registration_url": f"{BASE}/ttype/push", "push_ttl": "10", "push_ssl_verify": "0"})
policy("push_auth", "authentication", {"push_allow_polling": "allow", "push_ssl_verify": "0"})

work = args.work
with open(os.path.join(work, "password"), "w") as f:
    f.write("privacyidea-test-password\n")
with open(os.path.join(work, "settings.json"), "w") as f:
    json.dump({"privacyidea_poll_seconds": 1}, f)
env = {"PATH": os.environ["PATH"], "HOME": work, "COUNTERSIGN_SETTINGS": os.path.join(work, "settings.json")}


def cs(*arguments, timeout=120):
    command = [args.countersign, "--vault", os.path.join(work, "vault.cvault"), "--no-keyring", "--password-file", os.path.join(work, "password"), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def trigger():
    """A sign-in by alice with the PUSH token's PIN: privacyIDEA answers CHALLENGE."""
    reply = pi("POST", "/validate/check", data={"user": "alice", "realm": "localrealm", "pass": PUSH_PIN})
    check(reply["result"].get("authentication") == "CHALLENGE", "the sign-in is a PUSH challenge", json.dumps(reply["result"]))
    return reply["detail"]


def watch_one(*extra):
    """The next request as `countersign push watch --json` prints it."""
    result = cs("push", "watch", "--json", "--count", "1", "--timeout", "30", *extra)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    check(result.returncode == 0 and len(lines) == 1, "push watch prints the request", result.stderr.strip())
    return json.loads(lines[0]) if lines else {}


def outcome(transaction):
    polled = pi("GET", "/validate/polltransaction", params={"transaction_id": transaction})
    final = pi("POST", "/validate/check", data={"user": "alice", "realm": "localrealm", "pass": "", "transaction_id": transaction})
    return polled["detail"]["challenge_status"], final["result"]["authentication"]


init = cs("init", "--password", "--kdf-memory", "8", "--kdf-passes", "1")
check(init.returncode == 0, "a vault is made", init.stderr.strip())

print("1. PUSH token enrolled from its link")
token = pi("POST", "/token/init", headers=admin, data={"type": "push", "genkey": "1", "user": "alice", "realm": "localrealm", "pin": PUSH_PIN})
link, serial = token["detail"]["pushurl"]["value"], token["detail"]["serial"]
check(link.startswith("otpauth://pipush/") and "poll_only=True" in link, "privacyIDEA writes a poll-only link", link)
added = cs("add", "--uri", link)
check(added.returncode == 0 and "Enrolled" in added.stdout, "countersign add --uri enrolls it", added.stdout + added.stderr)
state = pi("GET", "/token/", headers=admin, params={"serial": serial})["result"]["value"]["tokens"][0]["rollout_state"]
check(state == "enrolled", "privacyIDEA lists the token as enrolled", state)
listed = cs("list")
check(serial in listed.stdout, "countersign list shows it", listed.stdout)
again = cs("add", "--uri", link)
check(again.returncode != 0, "the same link cannot enroll twice", again.stdout)

print("2. A sign-in approved: ACCEPT")
detail = trigger()
request = watch_one()
check(request.get("device_id") == serial and request.get("organization") == "privacyIDEA" and request.get("question"), "the request names the token and asks its question", json.dumps(request))
approved = cs("push", "approve", request.get("id", "?"))
check(approved.returncode == 0 and "approved" in approved.stdout, "countersign push approve", approved.stdout + approved.stderr)
check(outcome(detail["transaction_id"]) == ("accept", "ACCEPT"), "privacyIDEA reports ACCEPT", str(outcome(detail["transaction_id"])))

print("3. A sign-in denied: REJECT")
detail = trigger()
request = watch_one()
denied = cs("push", "deny", request.get("id", "?"))
check(denied.returncode == 0 and "denied" in denied.stdout, "countersign push deny", denied.stdout + denied.stderr)
check(outcome(detail["transaction_id"]) == ("cancelled", "REJECT"), "privacyIDEA reports REJECT (cancelled)", str(outcome(detail["transaction_id"])))

print("4. \"It wasn't me\": REJECT")
detail = trigger()
request = watch_one()
reported = cs("push", "report", request.get("id", "?"))
check(reported.returncode == 0 and "reported" in reported.stdout, "countersign push report", reported.stdout + reported.stderr)
check(outcome(detail["transaction_id"]) == ("declined", "REJECT"), "privacyIDEA reports REJECT (declined)", str(outcome(detail["transaction_id"])))

print("5. Presence mode: the option the sign-in page shows")
policy("push_presence", "authentication", {"push_require_presence": True})
detail = trigger()
shown = detail.get("presence_answer", "")
request = watch_one()
options = request.get("presence_options", [])
check(shown in options and len(options) >= 2, "the request offers the options, the right one among them", f"{shown} in {options}")
wrong = next((option for option in options if option != shown), "?")
refused = cs("push", "approve", request.get("id", "?"), "--answer", wrong)
check(refused.returncode != 0 and "did not take it" in refused.stderr, "a wrong option is refused and the request stays open", refused.stdout + refused.stderr)
picked = cs("push", "approve", request.get("id", "?"), "--answer", shown)
check(picked.returncode == 0 and "approved" in picked.stdout, "the right option approves", picked.stdout + picked.stderr)
check(outcome(detail["transaction_id"]) == ("accept", "ACCEPT"), "privacyIDEA reports ACCEPT", str(outcome(detail["transaction_id"])))
pi("DELETE", "/policy/push_presence", headers=admin)

print("6. A second PUSH token from its QR code image")
second = pi("POST", "/token/init", headers=admin, data={"type": "push", "genkey": "1", "user": "alice", "realm": "localrealm", "pin": "9999"})
image = os.path.join(work, "pipush.png")
with open(image, "wb") as f:
    f.write(base64.b64decode(second["detail"]["pushurl"]["img"].split(",", 1)[1]))
scanned = cs("add", "--qr", image)
check(scanned.returncode == 0 and second["detail"]["serial"] in scanned.stdout, "countersign add --qr enrolls it", scanned.stdout + scanned.stderr)
ambiguous = cs("push", "watch", "--count", "1", "--timeout", "5")
check(ambiguous.returncode != 0 and "--account" in ambiguous.stderr, "with two tokens, --account chooses", ambiguous.stderr)
removed = cs("remove", second["detail"]["serial"], "--yes")
check(removed.returncode == 0 and "Removed" in removed.stdout, "countersign remove deletes a token", removed.stdout + removed.stderr)

print("7. A TOTP token: its code is accepted")
totp = pi("POST", "/token/init", headers=admin, data={"type": "totp", "genkey": "1", "user": "alice", "realm": "localrealm", "pin": TOTP_PIN})
uri, totp_serial = totp["detail"]["googleurl"]["value"], totp["detail"]["serial"]
check("creator=privacyidea" in uri and f"serial={totp_serial}" in uri, "the link carries privacyIDEA's own parameters", uri)
imported = cs("add", "--uri", uri)
check(imported.returncode == 0, "countersign add --uri takes it", imported.stdout + imported.stderr)
code = cs("code", totp_serial, "--quiet").stdout.strip()
check(len(code) == 6 and code.isdigit(), "countersign code prints 6 digits", code)
verdict = pi("POST", "/validate/check", data={"user": "alice", "realm": "localrealm", "pass": TOTP_PIN + code})
check(verdict["result"].get("authentication") == "ACCEPT", "privacyIDEA accepts the code", json.dumps(verdict["result"]))

print(f"privacyidea: {'all checks passed' if not failures else str(len(failures)) + ' failed: ' + '; '.join(failures)}")
sys.exit(1 if failures else 0)
