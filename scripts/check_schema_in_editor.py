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
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoencoder.cli import Parser  # noqa: E402
from autoencoder.errors import UserError, exit_on_user_error  # noqa: E402

# A line added under `train:` of the first preset: each must give exactly one diagnostic.
MISTAKES = {"unknown_key.yaml": "epoch: 3", "wrong_type.yaml": "worker_timeout: soon"}
INSTALL = "npm install yaml-language-server, then pass node_modules/.bin/yaml-language-server"


class Server:
    """A language server on stdio; a thread reads its messages, so every wait has a deadline."""

    def __init__(self, command: str, timeout: float):
        self.command, self.timeout = command, timeout
        try:
            self.process = subprocess.Popen(
                [command, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        except OSError as exc:
            raise UserError(f"{command}: {exc.strerror}; {INSTALL}") from None
        self.messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Queue each message the server writes; None once its output ends or is not LSP."""
        stdout = self.process.stdout
        try:
            while True:
                length = None
                while (line := stdout.readline()) not in (b"", b"\r\n", b"\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if not line or length is None:
                    break
                self.messages.put(json.loads(stdout.read(length)))
        except ValueError:  # not a number, not JSON: not a language server
            pass
        self.messages.put(None)

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        try:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()
        except OSError:  # it has exited: the next receive says how
            pass

    def receive(self, deadline: float) -> dict:
        try:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise UserError(
                f"{self.command} did not answer within {self.timeout:g} s; is it "
                f"yaml-language-server? (--timeout gives a slow one longer)"
            ) from None
        if message is None:
            try:
                how = f"exited with status {self.process.wait(timeout=5)}"
            except subprocess.TimeoutExpired:
                how = "wrote something other than language-server messages"
            raise UserError(f"{self.command} {how}; is it yaml-language-server? {INSTALL}")
        return message

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def diagnostics(server: Server, path: Path, text: str) -> list[dict]:
    """Open `text` as the document at `path`; the diagnostics the server publishes for it."""
    uri = path.as_uri()
    document = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
    server.send({"method": "textDocument/didOpen", "params": {"textDocument": document}})
    deadline = time.monotonic() + server.timeout
    while True:
        message = server.receive(deadline)
        if "id" in message and "method" in message:  # a request of the server's: answer it
            server.send({"id": message["id"], "result": _answer(message)})
        elif message.get("method") == "textDocument/publishDiagnostics":
            if message["params"]["uri"] == uri:
                return message["params"]["diagnostics"]


def _answer(request: dict):
    # workspace/configuration asks for settings: validation on, the modeline names the schema.
    if request["method"] == "workspace/configuration":
        return [{"validate": True} for _ in request["params"]["items"]]
    return None


def start(server: Server) -> None:
    """Initialize the server (LSP's handshake) with validation on."""
    params = {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}
    server.send({"id": 0, "method": "initialize", "params": params})
    deadline = time.monotonic() + server.timeout
    while server.receive(deadline).get("id") != 0:
        pass
    server.send({"method": "initialized", "params": {}})
    settings = {"yaml": {"validate": True}}
    server.send({"method": "workspace/didChangeConfiguration", "params": {"settings": settings}})


def check(server: Server) -> bool:
    """Whether each preset has no diagnostic and each mistaken copy exactly one; prints them."""
    start(server)
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
    return ok


def main() -> int:
    parser = Parser(
        description=__doc__.splitlines()[0],
        epilog="Exit status 1 when a preset has a diagnostic or a mistaken copy not exactly one.",
    )
    parser.add_argument(
        "server",
        nargs="?",
        default="yaml-language-server",
        help="the yaml-language-server program (default: the one on PATH)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for each answer of the server (default 30)",
    )
    args = parser.parse_args()
    if args.timeout <= 0:
        parser.error(f"argument --timeout: must be above 0, got {args.timeout:g}")
    server = Server(args.server, args.timeout)
    try:
        return 0 if check(server) else 1
    finally:
        server.kill()


if __name__ == "__main__":
    sys.exit(exit_on_user_error(main))
