#!/usr/bin/env python3
"""make-seeds — writes the seed corpora of tests/fuzz/corpus/{frame,config,session}/.

The seeds are committed; this script says what each one is and regenerates
them when an input format changes (run it from anywhere; it rewrites the
three folders). Each seed is named after the case it covers, so a replay
failure in `make check` names the case.

Formats (see the top comment of each target):
  frame:   [max selector][n sizes][sizes...][byte stream]
  config:  the YAML file itself; server.crt/server.key (ECDSA) and
           rsa.crt/rsa.key exist next to it
  session: [flags] then steps [tag][len hi][len lo][data]
  proxy_proto: [mode: 0/3 any, 1 v1, 2 v2] then the bytes a client sent
"""
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(header=b"", payload=b"", total=None, header_len=None):
    """A v1 frame; total/header_len override the true values to break rules."""
    hl = len(header) if header_len is None else header_len
    tl = 6 + len(header) + len(payload) if total is None else total
    return struct.pack(">HI", hl, tl) + header + payload


QUIT = frame(b"QUIT")


def write(folder, name, data):
    path = os.path.join(HERE, "corpus", folder, name)
    with open(path, "wb") as f:
        f.write(data)


def reset(folder):
    path = os.path.join(HERE, "corpus", folder)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


# ---- frame ---------------------------------------------------------------
# max selector (low 3 bits): 6, 7, 10, 64, 1024, 65536, 1 MiB, 4 GiB - 1

def frame_seed(max_sel, sizes, stream):
    return bytes([max_sel, len(sizes)]) + bytes(s - 1 for s in sizes) + stream


def frame_seeds():
    reset("frame")
    req = frame(b"get", b"key")
    seeds = {
        "minimal-prefix-only": frame_seed(6, [], frame()),
        "request": frame_seed(6, [], req),
        "pipelined": frame_seed(6, [], req + frame(b"set", b"k=v") + frame(b"", b"x" * 40) + QUIT),
        "quit": frame_seed(6, [], QUIT),
        "quit-with-payload": frame_seed(6, [], frame(b"QUIT", b"bye")),
        "quit-lookalikes": frame_seed(6, [], frame(b"QUI") + frame(b"QUITX") + frame(b"quit") + frame(b"", b"QUIT")),
        "err": frame_seed(6, [], frame(b"ERR", b"BUSY no backend connection")),
        "split-every-byte": frame_seed(6, [1], req + QUIT + req),
        "split-in-prefix": frame_seed(6, [3, 2, 50], req + req),
        "split-varied": frame_seed(5, [1, 5, 6, 7, 255, 2], frame(b"h" * 300, b"p" * 700) + req),
        "total-exactly-max-64": frame_seed(3, [], frame(b"", b"a" * 58)),
        "total-max-plus-one-64": frame_seed(3, [], frame(b"", b"a" * 59)),
        "max-is-prefix": frame_seed(0, [], frame() + frame(b"", b"a")),
        "max-is-quit": frame_seed(2, [], QUIT + frame(b"QUIT", b"x")),
        "total-below-prefix": frame_seed(6, [], frame(total=5)),
        "total-zero": frame_seed(6, [], frame(total=0)),
        "header-equals-room": frame_seed(6, [], frame(b"abcd", total=10)),
        "header-past-room": frame_seed(6, [], frame(b"abcd", header_len=5, total=10)),
        "header-len-max": frame_seed(7, [], frame(header_len=0xFFFF, total=0xFFFF + 6)),
        "total-4gib": frame_seed(6, [], struct.pack(">HI", 0, 0xFFFFFFFF)),
        "total-4gib-max-4gib": frame_seed(7, [7], struct.pack(">HI", 2, 0xFFFFFFFF) + b"ab"),
        "partial-prefix": frame_seed(6, [], b"\x00\x00\x00"),
        "partial-frame": frame_seed(6, [], frame(b"", b"x" * 100)[:50]),
        "valid-then-invalid": frame_seed(6, [4], req + frame(total=3) + req),
        "empty-stream": frame_seed(6, [], b""),
    }
    for name, data in seeds.items():
        write("frame", name, data)
    return len(seeds)


# ---- config -------------------------------------------------------------------

SPEC_EXAMPLE = """workers: auto
user: sluice
group: sluice
listen:
  - address: 127.0.0.1:8443
    backend: app
    tls:
      certificates:
        - cert: server.crt
          key: server.key
          ocsp: server.crt
      min_version: TLSv1.2
      ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256"
      ciphersuites: "TLS_AES_128_GCM_SHA256"
      sni_required: false
      alpn: [sluice/1]
      alpn_required: false
      client_ca: server.crt
      client_verify: required
      crl: server.crt
      session_tickets: true
      ticket_keys: server.key
backends:
  app:
    servers:
      - address: 127.0.0.1:9000
    connections: 4
    connect_timeout: 2s
    queue_timeout: 5s
    request_timeout: 30s
    max_pending: 4096
limits:
  max_connections: 10000
  max_frame_size: 1MiB
  client_buffer: 4MiB
  handshake_timeout: 10s
  idle_timeout: 5m
shutdown:
  grace_timeout: 5s
admin:
  address: 127.0.0.1:9100
log:
  level: info
"""

MINIMAL = """listen:
  - address: 127.0.0.1:8443
    backend: app
    tls:
      certificates:
        - cert: server.crt
          key: server.key
backends:
  app:
    servers:
      - address: 127.0.0.1:9000
"""


def minimal_with(extra="", listen_extra="", backend_extra=""):
    text = MINIMAL.replace("          key: server.key\n",
                           "          key: server.key\n" + listen_extra)
    text = text.replace("      - address: 127.0.0.1:9000\n",
                        "      - address: 127.0.0.1:9000\n" + backend_extra)
    return text + extra


def config_seeds():
    reset("config")
    seeds = {
        "ok-spec-example": SPEC_EXAMPLE,
        "ok-minimal": MINIMAL,
        "ok-rsa": MINIMAL.replace("server.crt", "rsa.crt").replace("server.key", "rsa.key"),
        "ok-two-certs-sni": minimal_with(listen_extra="        - cert: rsa.crt\n          key: rsa.key\n"),
        "ok-tls13-alpn": minimal_with(listen_extra="      min_version: TLSv1.3\n      alpn: [sluice/1, h2]\n      alpn_required: true\n"),
        "ok-ipv6-two-listeners": MINIMAL.replace("listen:\n", "listen:\n  - address: \"[::1]:8444\"\n    backend: other\n    tls:\n      certificates:\n        - cert: rsa.crt\n          key: rsa.key\n", 1)
            + "  other:\n    servers:\n      - address: \"[::1]:9001\"\n      - address: 127.0.0.1:9002\n",
        "ok-limits-and-units": minimal_with("limits:\n  max_frame_size: 6B\n  client_buffer: 1GiB\n  idle_timeout: 1h\n  handshake_timeout: 250ms\nshutdown:\n  grace_timeout: 0s\nworkers: 2\nlog:\n  level: debug\n"),
        "ok-flow-style": "{listen: [{address: '127.0.0.1:1', backend: b, tls: {certificates: [{cert: server.crt, key: server.key}]}}], backends: {b: {servers: [{address: '127.0.0.1:2'}]}}}\n",
        "ok-anchors": MINIMAL.replace("        - cert: server.crt\n          key: server.key\n", "        - &c {cert: server.crt, key: server.key}\n        - *c\n"),
        "err-unknown-key": minimal_with("colour: blue\n"),
        "err-unknown-nested-key": minimal_with(backend_extra="    weight: 3\n"),
        "err-wrong-type": minimal_with("limits: 5\n"),
        "err-wrong-type-sequence": minimal_with("workers: [1, 2]\n"),
        "err-missing-listen": "backends:\n  app:\n    servers:\n      - address: 127.0.0.1:9000\n",
        "err-missing-backends": MINIMAL.split("backends:")[0],
        "err-missing-cert-key": MINIMAL.replace("          key: server.key\n", ""),
        "err-undefined-backend": MINIMAL.replace("backend: app", "backend: nope"),
        "err-unreadable-cert": MINIMAL.replace("server.crt", "missing.crt"),
        "err-mismatched-cert-key": MINIMAL.replace("server.key", "rsa.key"),
        "err-key-as-cert": MINIMAL.replace("cert: server.crt", "cert: server.key"),
        "err-bad-duration": minimal_with("limits:\n  idle_timeout: 5 minutes\n"),
        "err-bad-size": minimal_with("limits:\n  max_frame_size: 1MB\n"),
        "err-frame-too-small": minimal_with("limits:\n  max_frame_size: 5B\n"),
        "err-frame-too-large": minimal_with("limits:\n  max_frame_size: 4GiB\n  client_buffer: 8GiB\n"),
        "err-buffer-below-frame": minimal_with("limits:\n  max_frame_size: 8MiB\n"),
        "err-buffer-set-below-frame": minimal_with("limits:\n  max_frame_size: 64KiB\n  client_buffer: 1KiB\n"),
        "ok-localhost": MINIMAL.replace("127.0.0.1:8443", "localhost:8443"),
        "err-bad-address": MINIMAL.replace("127.0.0.1:8443", "example.com:8443").replace("127.0.0.1:9000", "\"[::1]9000\""),
        "err-bad-port": MINIMAL.replace("127.0.0.1:9000", "127.0.0.1:70000"),
        "err-duplicate-key": minimal_with("workers: 1\nworkers: 2\n"),
        "err-duplicate-listener": MINIMAL.replace("listen:\n", "listen:\n  - address: 127.0.0.1:8443\n    backend: app\n    tls:\n      certificates:\n        - cert: server.crt\n          key: server.key\n", 1),
        "err-admin-clash": minimal_with("admin:\n  address: 127.0.0.1:8443\n"),
        "err-bad-enum": minimal_with("log:\n  level: loud\n", listen_extra="      min_version: SSLv3\n      client_verify: sometimes\n"),
        "err-bool-yes": minimal_with(listen_extra="      session_tickets: yes\n"),
        "err-huge-number": minimal_with(backend_extra="    connections: 99999999999999999999999\n    max_pending: -1\n"),
        "err-many-errors": "".join("k%d: 1\n" % i for i in range(60)) + MINIMAL,
        "err-syntax-tab": MINIMAL.replace("  app:", "\tapp:"),
        "err-syntax-unclosed-quote": minimal_with("user: \"sluice\n"),
        "err-empty": "",
        "err-document-marker-only": "---\n",
        "err-two-documents": MINIMAL + "---\n" + MINIMAL,
        "err-root-sequence": "- listen\n- backends\n",
        "err-nul-in-string": minimal_with("user: \"slu\\0ice\"\n"),
        "err-invalid-utf8": minimal_with("user: caf\xe9\n"),
        "err-alias-reuse": "a: &s [server.crt, server.key]\n" + MINIMAL.replace("backend: app", "backend: *s"),
    }
    for name, text in seeds.items():
        write("config", name, text.encode("latin-1"))
    return len(seeds)


# ---- session -----------------------------------------------------------------------

(OP_CLIENT, OP_BACKEND, OP_LOOP, OP_ECHO, OP_CLIENT_CLOSE, OP_BACKEND_CLOSE, OP_TICK, OP_TIMERS,
 OP_SHUTDOWN, OP_LISTEN, OP_RESIZE, OP_OOM, OP_FILL_TIMERS) = range(13)


def step(op, arg=0, data=b""):
    return bytes([op | (arg << 4)]) + struct.pack(">H", len(data)) + data


def client(data, idx=0):
    return step(OP_CLIENT, idx, data)


def backend(data, conn=0):
    return step(OP_BACKEND, conn, data)


def loop(arg=15):
    return step(OP_LOOP, arg)


def echo(n=0):
    return step(OP_ECHO, n)


def script(*steps, flags=0):
    return bytes([flags]) + b"".join(steps)


def oom(k=1, count=1):
    """The kth allocation from here on fails, and count - 1 more after it."""
    return step(OP_OOM, count - 1, struct.pack(">H", k - 1))


def fill_timers(room=0):
    """libevent's timer heap full but for room slots: arming a timer allocates."""
    return step(OP_FILL_TIMERS, room)


def session_seeds():
    reset("session")
    r = [frame(b"get", b"key%d" % i) for i in range(8)]
    big = frame(b"put", b"v" * 4000)
    bad_header = frame(b"abcd", header_len=9, total=10)
    seeds = {
        "clean-one-request": script(client(r[0]), loop(), echo()),
        "clean-pipelined": script(client(b"".join(r)), loop(), echo(), loop(), echo()),
        "clean-pipelined-tiny-reads": script(client(b"".join(r[:5])), loop(), echo(), flags=1),
        "clean-reads-of-7": script(client(b"".join(r) + QUIT), loop(), echo(), flags=2),
        "clean-split-frame": script(client(r[0][:3]), loop(2), client(r[0][3:9]), loop(2), client(r[0][9:]), loop(), echo()),
        "clean-quit-with-outstanding": script(client(r[0] + r[1] + QUIT), loop(), echo()),
        "clean-quit-only": script(client(QUIT)),
        "clean-quit-then-more": script(client(r[0] + QUIT + r[1]), echo()),
        "clean-bad-header-len": script(client(r[0] + bad_header + r[1]), loop(), echo()),
        "clean-too-short": script(client(r[0] + frame(total=4))),
        "clean-oversized": script(client(r[0] + frame(b"", b"x" * 8200))),
        "clean-4gib": script(client(struct.pack(">HI", 0, 0xFFFFFFFF))),
        "clean-max-frame": script(client(frame(b"", b"m" * (8192 - 6))), loop(), echo()),
        "clean-over-budget": script(client(big + big + big), loop(), echo(1), loop(), echo()),
        "clean-two-clients": script(client(r[0] + r[1], 0), client(r[2] + r[3], 1), loop(), echo(), client(r[4] + QUIT, 1), echo()),
        "clean-empty-payloads": script(client(frame() + frame(b"", b"") + frame(b"ERR", b"BUSY x")), echo()),
        "backend-garbage": script(client(r[0]), loop(), backend(b"\x00\x09\x00\x00\x00\x07x"), loop(), client(r[1]), loop(), echo()),
        "backend-unsolicited": script(backend(frame(b"hi")), loop(), client(r[0]), loop(), echo()),
        "backend-answers-split": script(client(r[0] + r[1]), loop(), backend(frame(b"ok", b"1")[:4]), loop(2), backend(frame(b"ok", b"1")[4:] + frame(b"ok", b"2")), loop()),
        "backend-quit-outstanding": script(client(r[0] + r[1]), loop(), backend(QUIT), loop(), echo(), loop(), client(r[2]), loop(), echo(), step(OP_TIMERS, 3), loop()),
        "backend-quit-idle": script(backend(QUIT, 0), backend(QUIT, 1), loop(), echo(), loop(), client(r[0]), loop(), step(OP_TIMERS, 1), loop(), echo()),
        "backend-close-outstanding": script(client(r[0] + r[1] + r[2]), loop(), step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 1), loop(), client(r[3]), loop(), step(OP_TIMERS, 1), loop(), echo()),
        "backend-close-connect-timeout": script(step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 0), loop(), step(OP_TIMERS, 5), loop(), client(r[0]), loop(), echo()),
        "queue-timeout-busy": script(step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 0), loop(), client(r[0] + r[1]), loop(), step(OP_TICK, 0), loop()),
        "request-timeout": script(client(r[0] + r[1]), loop(), step(OP_TICK, 1), loop(), client(r[2]), loop(), step(OP_TIMERS, 1), loop(), echo()),
        "max-pending-pause": script(client(b"".join(r), 0), client(r[0], 1), loop(), echo(2), loop(), echo()),
        "shutdown-outstanding": script(client(r[0] + r[1]), loop(), step(OP_SHUTDOWN), loop(), echo(), client(r[2] + QUIT), loop(), echo()),
        "shutdown-idle": script(client(r[0]), loop(), echo(), loop(), step(OP_SHUTDOWN), loop(), client(QUIT)),
        "client-half-close": script(client(r[0] + r[1]), loop(), step(OP_CLIENT_CLOSE, 2), loop(), echo()),
        "client-close-outstanding": script(client(r[0] + r[1], 1), loop(), step(OP_CLIENT_CLOSE, 1), loop(), echo()),
        "client-paused-then-close": script(client(big + big + big + big), loop(), step(OP_CLIENT_CLOSE, 0), loop(), echo()),
        "orphan-written-after-reconnect": script(client(b"".join(r), 0), client(r[0], 1), loop(), step(OP_CLIENT_CLOSE, 2)),
        "server-down-and-back": script(step(OP_LISTEN, 1), step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 0), loop(), client(r[0]), loop(),
                                       step(OP_TIMERS, 1), loop(), client(r[1]), loop(), step(OP_LISTEN, 0), step(OP_TIMERS, 1), loop(), client(r[2]), loop(), echo()),
        "server-down-connect-timeout": script(step(OP_LISTEN, 1), step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 0), loop(), step(OP_TIMERS, 5), step(OP_TIMERS, 4), loop(), client(r[0] + r[1]), loop(), step(OP_TICK, 0)),
        "resize-retire-outstanding": script(client(r[0] + r[1]), loop(), step(OP_RESIZE, 1), loop(), client(r[2]), loop(), echo(), loop(), echo(), loop(), step(OP_RESIZE, 0), loop(), client(r[3]), loop(), echo()),
        "resize-retire-idle": script(step(OP_RESIZE, 1), loop(), echo(), loop(), step(OP_RESIZE, 0), loop(), client(r[0] + r[1]), loop(), echo()),
        "resize-retire-grace": script(client(r[0], 0), client(r[1], 1), loop(), step(OP_RESIZE, 1), echo(), loop(), step(OP_TIMERS, 2), loop(), echo()),
        "out-of-order-two-conns": script(client(r[0], 0), client(r[1], 1), loop(), backend(frame(b"b"), 1), loop(), backend(frame(b"a"), 0), loop(), echo()),
        # Allocation failures (docs/TESTING.md, "Out-of-memory testing").
        # Which allocation the kth is depends on the code: the comments say
        # what each reached when it was written; check_oom sweeps them all.
        # A client's session cannot be allocated, another's timer.
        "oom-session-attach": script(oom(1), client(r[0]), loop(), echo(), oom(2), client(r[1], 1), loop(), echo()),
        # The ERR BUSY for a request pool_tick took out of the wait queue
        # cannot be made (its evbuffer_new): the session is closed and must
        # not take the request out of the queue a second time.
        "oom-queue-timeout-busy": script(step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 0), loop(), client(r[0] + r[1]), loop(),
                                         oom(1), step(OP_TICK, 0), loop()),
        # The same for an ERR BUSY that would wait behind an earlier request
        # still out on a retiring connection (session_respond holds it).
        "oom-parked-answer": script(client(r[0], 0), client(r[1], 1), loop(), step(OP_RESIZE, 1), loop(), client(r[2], 0), client(r[3], 1), loop(),
                                    oom(1), step(OP_TICK, 0), loop(), echo(), loop(), echo(), loop()),
        # The pool shrinks and grows back; the list of its connections is
        # rebuilt when the retired one is freed (pool_collect), and that
        # allocation fails (the 7th here).
        "oom-resize-collect": script(client(r[0] + r[1], 0), client(r[2], 1), loop(), step(OP_RESIZE, 1), loop(), echo(), loop(), echo(), loop(),
                                     step(OP_RESIZE, 0), loop(), oom(7), client(r[3], 0), loop(), echo(), loop()),
        # Growing the pool back, the new connection's timer cannot be made
        # (upstream_new's evtimer_new, the 7th allocation here).
        "oom-upstream-new": script(client(r[0], 0), loop(), step(OP_RESIZE, 1), loop(), echo(), loop(),
                                   oom(7), step(OP_RESIZE, 0), loop(), client(r[1], 0), loop(), echo(), loop()),
        # Reads of 7 bytes split frames over evbuffer chains: the 6th
        # allocation copies part of a chain moving requests to a backend
        # connection, the 18th part of one moving answers to a client. Both
        # used to vanish silently (evbuffer_remove_buffer reports them moved).
        "oom-request-move": script(oom(6), client(b"".join(r[:6]) + QUIT, 0), client(r[6] + r[7], 1), loop(), echo(), loop(), echo(), loop(), flags=2),
        "oom-response-move": script(oom(18), client(b"".join(r[:6]) + QUIT, 0), client(r[6] + r[7], 1), loop(), echo(), loop(), echo(), loop(), flags=2),
        # libevent's timer heap is full: a failed connection's backoff
        # cannot be armed (the 2nd allocation here).
        "oom-backoff-full-timer-heap": script(fill_timers(0), oom(2), step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 0), loop(), step(OP_TIMERS, 1), loop(),
                                              client(r[0]), loop(), echo(), loop()),
        # A session closed for want of memory (reading the backend's close,
        # then the ERR UNAVAILABLE it gets, fail) while the timer heap is
        # full: the timer that frees it cannot be armed.
        "oom-kill-full-timer-heap": script(client(r[0] + QUIT), loop(), fill_timers(0), oom(1, 3), step(OP_BACKEND_CLOSE, 0), step(OP_BACKEND_CLOSE, 0),
                                           loop(), step(OP_TIMERS, 1), loop()),
    }
    for name, data in seeds.items():
        write("session", name, data)
    return len(seeds)


V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"
HELLO = b"\x16\x03\x01\x00\x05hello"


def v2(cmd=1, fam=1, proto=1, body=b"", length=None):
    """A v2 header; length overrides the true length of body."""
    n = len(body) if length is None else length
    return V2SIG + bytes([0x20 | cmd, fam << 4 | proto]) + struct.pack(">H", n) + body


V2_INET = bytes([192, 0, 2, 7, 127, 0, 0, 1]) + struct.pack(">HH", 40000, 443)
V2_INET6 = bytes(15) + b"\x07" + bytes(15) + b"\x01" + struct.pack(">HH", 40000, 443)


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def proxy_proto_seeds():
    reset("proxy_proto")
    seeds = {
        "v1-tcp4": b"\x00PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n" + HELLO,
        "v1-tcp6": b"\x00PROXY TCP6 2001:db8::7 ::1 40000 443\r\n" + HELLO,
        "v1-unknown": b"\x00PROXY UNKNOWN\r\n",
        "v1-unknown-rest": b"\x00PROXY UNKNOWN ff::1 ::1 1 2\r\n",
        "v1-longest": b"\x01PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                      b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        "v1-no-crlf": b"\x01PROXY TCP4 " + b"1" * 120,
        "v1-lf-only": b"\x01PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\n",
        "v1-double-space": b"\x01PROXY TCP4  192.0.2.7 127.0.0.1 40000 443\r\n",
        "v1-port-range": b"\x01PROXY TCP4 192.0.2.7 127.0.0.1 65536 443\r\n",
        "v1-leading-zero": b"\x01PROXY TCP4 192.0.2.7 127.0.0.1 040000 443\r\n",
        "v1-family-mismatch": b"\x01PROXY TCP4 ::1 ::1 1 2\r\n",
        "v1-on-v2": b"\x02PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n",
        "v2-inet": b"\x00" + v2(body=V2_INET) + HELLO,
        "v2-inet6": b"\x02" + v2(fam=2, body=V2_INET6),
        "v2-local": b"\x02" + v2(cmd=0, fam=0, proto=0),
        "v2-local-body": b"\x02" + v2(cmd=0, fam=1, body=V2_INET),
        "v2-unspec": b"\x00" + v2(fam=0, proto=0, body=b""),
        "v2-unix": b"\x00" + v2(fam=3, body=bytes(216)),
        "v2-tlvs": b"\x00" + v2(body=V2_INET + tlv(2, b"example.com") + tlv(4, b"") + tlv(0x20, b"\x01" + bytes(4))),
        "v2-tlv-overrun": b"\x00" + v2(body=V2_INET + b"\x02\x00\x09abc"),
        "v2-tlv-stub": b"\x00" + v2(body=V2_INET + b"\x02\x00"),
        "v2-short-block": b"\x00" + v2(body=V2_INET[:8]),
        "v2-dgram": b"\x00" + v2(proto=2, body=V2_INET),
        "v2-bad-version": b"\x00" + V2SIG + b"\x11\x11\x00\x0c" + V2_INET,
        "v2-bad-command": b"\x00" + V2SIG + b"\x22\x11\x00\x0c" + V2_INET,
        "v2-too-long": b"\x00" + v2(body=V2_INET, length=0xffff),
        "v2-bad-signature": b"\x00\r\n\r\n\x00\r\nQUIT\r" + b"\x21\x11\x00\x0c" + V2_INET,
        "v2-on-v1": b"\x01" + v2(body=V2_INET),
        "tls-hello": b"\x00" + HELLO,
        "empty": b"\x00",
    }
    for name, data in seeds.items():
        write("proxy_proto", name, data)
    return len(seeds)


def main():
    counts = (frame_seeds(), config_seeds(), session_seeds(), proxy_proto_seeds())
    print("frame %d, config %d, session %d, proxy_proto %d seeds written" % counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
