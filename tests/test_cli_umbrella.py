"""The ``maskgct`` command: its help lists the subcommands, each runs its ``python -m maskgct.<x>`` tool,
an unknown one is one error line with exit code 2, and the help is fast because nothing heavy is imported."""

import importlib
import re
import subprocess
import sys

from conftest import REPO

import maskgct.__main__ as umbrella


def run(*args, module="maskgct"):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO)


def test_help_lists_the_commands_without_importing_torch():
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from maskgct.__main__ import main; main(['--help']);"
         "print('heavy:', sorted(m for m in ('torch', 'transformers', 'hydra') if m in sys.modules))"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("clone", "serve", "codecs", "convert", "train", "data", "eval"):
        assert f"\n  {name} " in done.stdout, name
    assert done.stdout.rstrip().endswith("heavy: []")
    assert run("--help").stdout == done.stdout.rsplit("heavy:", 1)[0]
    # No command at all: the usage on stderr, exit 2.
    bare = run()
    assert bare.returncode == 2 and bare.stdout == "" and "commands:" in bare.stderr


def test_unknown_command_is_one_error_line():
    done = run("speak", "--text", "hi")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: unknown command 'speak'; the commands are: {', '.join(umbrella.available())}"
    ]


def test_subcommands_run_the_same_tools_as_python_m():
    assert run("text", "Hello there.").stdout == run("Hello there.", module="maskgct.text").stdout != ""
    clone = run("clone", "--prompt", "missing.wav", "--prompt-text", "Hi.", "--text", "Hi.", "--out", "x.txt")
    direct = run("--prompt", "missing.wav", "--prompt-text", "Hi.", "--text", "Hi.", "--out", "x.txt",
                 module="maskgct.infer")  # fmt: skip
    assert clone.returncode == direct.returncode == 2 and clone.stderr == direct.stderr
    assert len(clone.stderr.strip().splitlines()) == 1 and clone.stderr.startswith("error: ")


def test_every_listed_command_has_a_main_and_the_console_script_points_here(monkeypatch):
    for name, (module, _) in umbrella.available().items():
        assert callable(importlib.import_module(module).main), name
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '[project.scripts]\nmaskgct = "maskgct.__main__:main"\n' in pyproject
    # train is a hydra app, which reads sys.argv: the umbrella hands its arguments on there.
    seen = {}
    train = importlib.import_module("maskgct.train.__main__")
    monkeypatch.setattr(train, "main", lambda: seen.update(argv=list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["maskgct", "train", "task=t2s"])
    assert umbrella.main(["train", "task=t2s", "model=t2s_tiny"]) == 0
    assert seen["argv"] == ["maskgct train", "task=t2s", "model=t2s_tiny"]


def test_every_package_and_the_page_are_in_the_distribution():
    # The packages are listed by hand (codecs/ is mapped to maskgct.codecs): a new one must be added there.
    pyproject = (REPO / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(maskgct(?:\.\w+)*)"', pyproject.split("packages = [", 1)[1].split("]", 1)[0]))
    found = {"maskgct.codecs"} | {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "maskgct").rglob("__init__.py")
    }
    assert found <= listed, found - listed
    assert '"maskgct.serve" = ["static/*"]' in pyproject
