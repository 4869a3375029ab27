"""The ``maskgct`` command: one entry point whose subcommands are the ``python -m maskgct.<x>`` tools.

    maskgct clone --prompt ref.wav --prompt-text "..." --text "..." --out out.wav
    maskgct serve --ui
    maskgct <command> --help

Each subcommand imports its module only when it runs, so ``maskgct --help`` does not load torch. The
``python -m maskgct.<x>`` forms keep working: this file only dispatches to their ``main``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from maskgct.cli import report_error

# name → (modules whose ``main`` may run it, the first that exists wins; one-line summary). ``edit`` and
# ``vc`` are listed only when one of their modules exists.
COMMANDS = {
    "clone": (("maskgct.infer",), "speak a text in the voice of a prompt recording"),
    "serve": (("maskgct.serve.__main__",), "HTTP API (OpenAI-compatible) and, with --ui, the web page"),
    "edit": (("maskgct.edit_cli", "maskgct.edit.__main__"), "replace words in a recording, in its voice"),
    "vc": (("maskgct.vc_cli", "maskgct.vc.__main__"), "voice conversion: a recording said in another voice"),
    "codecs": (("maskgct.codecs.__main__",), "encode/decode audio with the semantic and acoustic codecs"),
    "convert": (("maskgct.convert",), "convert official Amphion checkpoints to a maskgct folder"),
    "train": (("maskgct.train.__main__",), "train a network (hydra overrides: experiment=... task=...)"),
    "data": (("maskgct.data.__main__",), "prepare data: corpora, features, token dumps"),
    "eval": (("maskgct.eval.__main__",), "evaluate clones: WER, speaker similarity, MOS, RTF"),
    "text": (("maskgct.text.__main__",), "text to phones (the G2P front end)"),
}


def find(module: str) -> bool:
    """Whether ``module`` is installed, without importing it (its parent package is imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # the parent is a plain module, not a package
        return False


def available() -> dict[str, tuple[str, str]]:
    """name → (the module that runs it, summary), for the commands that are installed."""
    found = {
        name: (next((m for m in modules if find(m)), None), summary)
        for name, (modules, summary) in COMMANDS.items()
    }
    return {name: entry for name, entry in found.items() if entry[0] is not None}


def usage() -> str:
    lines = [
        "usage: maskgct <command> [options]   (maskgct <command> --help for its options)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<9} {summary}" for name, (_, summary) in available().items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage(), file=sys.stderr)
        return report_error("name a command (maskgct <command> --help says more)")
    if argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from maskgct import __version__

        print(f"maskgct {__version__}")
        return 0
    commands = available()
    name, rest = argv[0], argv[1:]
    if name not in commands:
        return report_error(f"unknown command {name!r}; the commands are: {', '.join(commands)}")
    module = importlib.import_module(commands[name][0])
    if name == "train":
        # Hydra reads sys.argv itself; its --help and error messages then name the umbrella command.
        sys.argv = [f"maskgct {name}", *rest]
        return module.main() or 0
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
