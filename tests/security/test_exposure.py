"""One rule for every server Danlu starts (the GUI and a shared demo): off this computer only with a
login; each server says why in its own words."""
import pytest

from core import demos, exposure
from core.errors import InputError
from cli import gui_cmd


@pytest.mark.parametrize("check, words", [(gui_cmd.check_exposure, "run commands as you"),
                                          (demos.check_exposure, "use the chat")])
def test_the_gui_and_a_demo_refuse_the_same_exposures(check, words):
    for host in ("127.0.0.1", "localhost", "::1"):
        check(host, False, None)
    check("0.0.0.0", True, ("ann", "long-pass"))
    with pytest.raises(InputError) as e:
        check("0.0.0.0", True, None)
    assert [p.where for p in e.value.problems] == ["--host", "--share"] and words in e.value.problems[0].message


def test_parse_auth_reads_the_option_or_the_first_line_of_a_file(tmp_path):
    assert exposure.parse_auth(None) is None
    assert exposure.parse_auth("ann:pa:ss") == ("ann", "pa:ss")
    (tmp_path / "login").write_text("bo:secret\nignored\n")
    assert exposure.parse_auth(None, str(tmp_path / "login")) == ("bo", "secret")
    for bad in (dict(auth="ann"), dict(auth=None, auth_file=str(tmp_path / "missing"))):
        with pytest.raises(InputError):
            exposure.parse_auth(**bad)


def test_an_auth_file_that_is_a_pipe_is_refused_not_waited_on(tmp_path):
    """`gui --auth-file PIPE` (or `demo`) opened the pipe, which waits for a writer: the app hung before it
    started, saying nothing (found probing the CLI with a FIFO)."""
    import os
    import threading
    pipe = tmp_path / "login"
    os.mkfifo(pipe)
    said = []

    def parse():
        try:
            exposure.parse_auth(None, str(pipe))
        except InputError as e:
            said.append(str(e))
    t = threading.Thread(target=parse, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():  # let the waiting open() go before failing
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        t.join(5)
        pytest.fail("parse_auth waited on the pipe")
    assert said and "is not a regular file" in said[0], said
