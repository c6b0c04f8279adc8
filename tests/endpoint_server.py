"""A local OpenAI-compatible chat server for tests: each request takes the next scripted behaviour, else answers
"答" + the last message. Behaviours: (status, headers[, its error message]) for an error, "malformed" (200, not
JSON), "drop" (the connection closed without an answer), "slow" (answers after 3 s), "usage" (answers with
usage.total_tokens 42)."""

import contextlib
import http.server
import json
import threading
import time


def answer_text(body: dict) -> str:
    return "答" + body["messages"][-1]["content"]


@contextlib.contextmanager
def scripted_server(answer=answer_text, delay: float = 0.0):
    """(base URL, the script to append to, the requests seen); `answer(body)` makes each answer's text, `delay`
    seconds before each."""
    script: list = []
    seen: list[dict] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                seen.append({"body": body, "auth": self.headers.get("Authorization"), "t": time.monotonic()})
                step = script.pop(0) if script else (200, {})
            time.sleep(delay)
            if step == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if step == "slow":
                time.sleep(3)
            status, headers, *said = step if isinstance(step, tuple) else (200, {})
            reply = {"choices": [{"message": {"role": "assistant", "content": answer(body)}}]}
            if step == "usage":
                reply["usage"] = {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
            data = (b"<html>502 Bad Gateway</html>" if step == "malformed"
                    else json.dumps(reply if status == 200 else {"error": {"message": said[0] if said else "scripted"}},
                                   ensure_ascii=False).encode())
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script, seen
    finally:
        httpd.shutdown()
        httpd.server_close()
