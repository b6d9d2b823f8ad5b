"""wsprobe.py - a minimal WebSocket client for the end-to-end tests (no package needed).

    wsprobe.py PORT PATH PROTOCOL [--send TEXT] [--half] [--binary] [--wait S] [--texts]

Connects to 127.0.0.1:PORT, upgrades PATH with Sec-WebSocket-Protocol PROTOCOL, sends
TEXT as one text frame (or, with --half, only the first half of that frame), then reads
until the server closes or S seconds pass. Prints one line:
    close CODE REASON   the server sent a close frame (CODE 1005 when it had none)
    eof                 the connection ended without a close frame (a browser's 1006)
    open                still open after S seconds
    refused STATUS      the upgrade was answered with HTTP STATUS
--binary sends TEXT as a binary frame. With --texts, each text frame received before that is printed first as "text PAYLOAD".
"""
import base64
import os
import socket
import struct
import sys
import time


def frame(payload, opcode=1):
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def main():
    port, path, proto = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    args = sys.argv[4:]
    send, half, wait, texts, binary = None, False, 5.0, False, False
    while args:
        a = args.pop(0)
        if a == "--send":
            send = args.pop(0).encode()
        elif a == "--half":
            half = True
        elif a == "--wait":
            wait = float(args.pop(0))
        elif a == "--texts":
            texts = True
        elif a == "--binary":
            binary = True
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {proto}\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            print("eof")
            return
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    status = head.split(b" ")[1].decode()
    if status != "101":
        print("refused", status)
        return
    if send is not None:
        f = frame(send, 2 if binary else 1)
        s.sendall(f[: len(f) // 2] if half else f)
    end = time.time() + wait
    while True:
        while len(buf) >= 2:
            op, n = buf[0] & 0x0F, buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            payload, buf = buf[off : off + n], buf[off + n :]
            if op == 1 and texts:
                print("text", payload.decode(errors="replace"))
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                print("close", code, payload[2:].decode(errors="replace"))
                return
        left = end - time.time()
        if left <= 0:
            print("open")
            return
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            print("open")
            return
        except ConnectionResetError:
            print("eof")
            return
        if not chunk:
            print("eof")
            return
        buf += chunk


if __name__ == "__main__":
    main()
