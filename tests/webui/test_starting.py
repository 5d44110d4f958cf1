"""The "starting" page answers while Gradio loads, and gives the port back when closed."""
import socket
import urllib.error
import urllib.request

from tests.webui.conftest import free_port
from webui.starting import MARKER, StartingPage


def test_answers_at_once_then_frees_the_port():
    port = free_port()
    page = StartingPage("127.0.0.1", port)
    assert page.serving
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/?lang=zh", timeout=5).read().decode()
    assert MARKER in body and "Starting" in body and "正在启动" in body
    try:  # the app's own routes are "not yet", never a 200 that looks like an answer
        urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/file=/etc/passwd", timeout=5)
        raise AssertionError("an app route answered 200 while starting")
    except urllib.error.HTTPError as e:
        assert e.code == 503 and e.headers["Retry-After"] == "2"
    page.close()
    with socket.socket() as s:  # Gradio binds right after close(), the same way
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_busy_port_is_left_to_gradio_to_report():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        page = StartingPage("127.0.0.1", s.getsockname()[1])
        assert not page.serving
        page.close()  # harmless
