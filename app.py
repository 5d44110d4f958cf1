"""Danlu (丹炉): fine-tune a language model from your browser.

    python app.py                      start the GUI on http://127.0.0.1:7860
    python app.py VERB ...             the same actions from the command line (python app.py --help)
"""
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("gui", "--host", "--port", "--share", "--auth", "--auth-file"):
        from cli.main import main as cli_main
        return cli_main(["gui"] + (argv[1:] if argv and argv[0] == "gui" else argv))
    from cli.main import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
