"""The sandbox's way to the model gateway: a loopback port forwarded to the gateway's unix socket.

Run by the sandbox's own ``python3`` (standard library only) in front of the agent's command::

    python3 bridge.py SOCKET -- COMMAND...

It listens on ``127.0.0.1`` (a free port, in the sandbox's own network namespace when the
network is off), sets ``OPENAI_BASE_URL``, ``OPENAI_API_BASE`` and ``ANTHROPIC_BASE_URL`` to
it, forks a forwarder that copies each connection to ``SOCKET`` (the gateway, bind-mounted
in), and replaces itself with COMMAND, which keeps its exit code and signals. The forwarder
ends with the sandbox (its PID namespace goes when COMMAND ends).
"""

import contextlib
import os
import socket
import sys
import threading


def _pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _serve(listener, target):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            continue
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(target)
        except OSError:
            client.close()
            upstream.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: bridge.py SOCKET -- COMMAND...\n")
        return 2
    target, command = argv[0], argv[2:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    if os.fork() == 0:
        try:
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            _serve(listener, target)
        finally:
            os._exit(0)
    listener.close()
    os.environ.update({"OPENAI_BASE_URL": base + "/v1", "OPENAI_API_BASE": base + "/v1",
                       "ANTHROPIC_BASE_URL": base, "TRIALBOOK_GATEWAY_URL": base})
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
