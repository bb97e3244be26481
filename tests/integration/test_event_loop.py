"""The event loop is never blocked: while a MongoDB call is held back by a
delaying proxy in front of the store, the same (single) worker answers
/healthz at once."""

import socket
import threading

from feira import stack_env, wait_for


class HoldingProxy:
    """A TCP proxy whose server-to-client direction can be held."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.released = threading.Event()
        self.released.set()
        self.held_bytes = threading.Event()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self):
        self.held_bytes.clear()
        self.released.clear()

    def release(self):
        self.released.set()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(c, u, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, True),
                             daemon=True).start()

    def _pipe(self, src, dst, to_client):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if to_client and not self.released.is_set():
                    self.held_bytes.set()
                    self.released.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.release()
        self.sock.close()


def test_healthz_answers_while_a_mongo_call_is_held(nginx_factory):
    mongo = stack_env()["MONGO_URI"]
    host, port = mongo.split("//")[1].split("/")[0].split(":")
    proxy = HoldingProxy((host, int(port)))
    try:
        n = nginx_factory(workers=1, env={
            "MONGO_URI": f"mongodb://127.0.0.1:{proxy.port}/feira"
                         "?socketTimeoutMS=60000"})
        wait_for(lambda: n.get("/readyz").status == 200, timeout=30,
                 what="ready through the proxy")

        proxy.hold()
        result = {}

        def slow():
            result["readyz"] = n.get("/readyz", timeout=60)

        t = threading.Thread(target=slow)
        t.start()
        # the worker's Mongo ping has reached the store; its answer is held
        assert proxy.held_bytes.wait(10)

        for _ in range(20):
            assert n.get("/healthz", timeout=5).status == 200
        # /healthz was served while the Mongo call was still in flight
        assert t.is_alive() and "readyz" not in result

        proxy.release()
        t.join(30)
        assert result["readyz"].status == 200
    finally:
        proxy.close()
