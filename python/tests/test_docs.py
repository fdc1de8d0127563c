"""The README's Python examples run as they are shown, and the type stubs and docstrings
match the runtime."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import mailslot
from conftest import REPO, skip_or_fail

EXAMPLES = REPO / "python" / "examples"


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = text.split("```python\n")[1:]
    return [block.split("```", 1)[0] for block in blocks]


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "news.py",
            "4 messages wait\nb'hello' from pid {pid} lost before it: 0\n"
            "update 0\nupdate 1\nupdate 2\n"
            'NotFound - mailslot "news": no server has it open on this host\n',
        ),
        ("asyncio_reader.py", "got b'job 1'\n"),
    ],
)
def test_the_readme_examples_run(msdir, example, expected):
    source = (EXAMPLES / example).read_text()
    assert source in readme_python_blocks(), f"README.md does not show {example} as it is"
    child = subprocess.Popen(
        [sys.executable, str(EXAMPLES / example)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, err
    assert out == expected.format(pid=child.pid)


def test_every_public_name_has_a_docstring():
    for name in mailslot.__all__:
        obj = getattr(mailslot, name)
        if isinstance(obj, int):
            continue
        assert (obj.__doc__ or "").strip(), name
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if not attr.startswith("_"):
                    assert (member.__doc__ or "").strip(), f"{name}.{attr}"


def test_the_stubs_match_the_runtime():
    try:
        import mypy.stubtest  # noqa: F401
    except ImportError:
        skip_or_fail("mypy (for stubtest) is not installed")
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "mailslot"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
