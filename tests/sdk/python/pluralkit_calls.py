"""Drives the real `pluralkit` SDK (PyPI) against BASE_URL and prints one JSON line per call:
what the application sees (return value or exception class and message) and when.

Usage: python3 pluralkit_calls.py BASE_URL
The SDK has no base-URL option; its module-global `pluralkit.v2.client.SERVER` is the supported
way to point it elsewhere (every request URL is built from it).
"""
import asyncio
import json
import sys
import time

try:
    import pluralkit
    import pluralkit.v2.client as pk_client
except ImportError as e:  # the Rust test turns this into a clear failure
    print(json.dumps({"missing": f"python package pluralkit: {e}"}))
    sys.exit(3)


async def main(base):
    pk_client.SERVER = base
    client = pluralkit.Client("test-token", async_mode=True)
    t0 = time.monotonic()
    calls = [
        ("get_member", lambda: client.get_member("abcde")),
        ("get_system", lambda: client.get_system("zzzzz")),
        ("get_member_limited", lambda: client.get_member("limit")),
        ("get_member_again", lambda: client.get_member("abcde")),
    ]
    for name, call in calls:
        out = {"call": name}
        try:
            value = await call()
            out["ok"] = str(value)
        except Exception as e:  # what the application would catch
            out["exception"] = type(e).__name__
            out["message"] = str(e)
        out["t"] = round(time.monotonic() - t0, 3)
        print(json.dumps(out), flush=True)


asyncio.run(main(sys.argv[1]))
