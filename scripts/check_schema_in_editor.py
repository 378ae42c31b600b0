"""Check docs/config.schema.json with the YAML language server that editors run.

Not part of the test suite: it needs Node.js and npm's yaml-language-server, e.g.

    mkdir -p /tmp/yls && (cd /tmp/yls && npm install yaml-language-server)
    python scripts/check_schema_in_editor.py /tmp/yls/node_modules/.bin/yaml-language-server

It opens every preset in configs/ (each names the schema in its first line) and a copy of one
with an unknown key and one with a wrong type, over LSP on stdio, and prints the diagnostics
the server publishes: none for a preset, one for each copy. Exit status 1 when that is not so.
Seen with yaml-language-server 1.25.0: "Property epoch is not allowed." and
'Incorrect type. Expected "integer".'
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A line added under `train:` of the first preset: each must give exactly one diagnostic.
MISTAKES = {"unknown_key.yaml": "epoch: 3", "wrong_type.yaml": "worker_timeout: soon"}


def send(server: subprocess.Popen, message: dict) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    server.stdin.flush()


def receive(server: subprocess.Popen) -> dict:
    length = 0
    while (line := server.stdout.readline().strip()) != b"":
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(server.stdout.read(length))


def diagnostics(server: subprocess.Popen, path: Path, text: str) -> list[dict]:
    """Open `text` as the document at `path`; the diagnostics the server publishes for it."""
    uri = path.as_uri()
    document = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
    send(server, {"method": "textDocument/didOpen", "params": {"textDocument": document}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = receive(server)
        if "id" in message and "method" in message:  # a request of the server's: answer it
            send(server, {"id": message["id"], "result": _answer(message)})
        elif message.get("method") == "textDocument/publishDiagnostics":
            if message["params"]["uri"] == uri:
                return message["params"]["diagnostics"]
    raise TimeoutError(f"no diagnostics for {path}")


def _answer(request: dict):
    # workspace/configuration asks for settings: validation on, the modeline names the schema.
    if request["method"] == "workspace/configuration":
        return [{"validate": True} for _ in request["params"]["items"]]
    return None


def start(command: str) -> subprocess.Popen:
    server = subprocess.Popen(
        [command, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr
    )
    params = {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}
    send(server, {"id": 0, "method": "initialize", "params": params})
    while "id" not in (reply := receive(server)) or reply["id"] != 0:
        pass
    send(server, {"method": "initialized", "params": {}})
    settings = {"yaml": {"validate": True}}
    send(server, {"method": "workspace/didChangeConfiguration", "params": {"settings": settings}})
    return server


def main(command: str) -> int:
    server = start(command)
    ok = True
    presets = sorted((ROOT / "configs").glob("*.yaml"))
    for path in presets:
        found = diagnostics(server, path, path.read_text())
        print(f"{path.relative_to(ROOT)}: {len(found)} diagnostics {[d['message'] for d in found]}")
        ok &= found == []
    # Copies beside the presets (not written to disk), so the modeline's relative path resolves.
    for name, line in MISTAKES.items():
        text = presets[0].read_text().replace("\ntrain:\n", f"\ntrain:\n  {line}\n", 1)
        found = diagnostics(server, ROOT / "configs" / name, text)
        for d in found:
            at = d["range"]["start"]["line"] + 1
            print(f"configs/{name} (not on disk): line {at}: {d['message']}")
        ok &= len(found) == 1
    server.kill()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "yaml-language-server"))
