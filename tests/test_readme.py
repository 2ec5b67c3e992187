"""The README: its opening, and its Python examples run as written and print what they
compute."""

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 2


def test_the_readme_opens_with_its_title_and_the_two_commands():
    text = README.read_text()
    assert text.splitlines()[0] == "# metastep"
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block.start() < text.index("\n## ")
    main_job, tests = first_block.group(1).strip().splitlines()  # exactly two commands
    for command in (main_job, tests):
        assert command.startswith("python -m venv .venv && . .venv/bin/activate && ")
    assert main_job.endswith('pip install -e ".[experiments]" && metastep reproduce')
    assert tests.endswith('pip install -e ".[test]" && pytest')


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs_and_prints_what_it_computes(index, capsys):
    """It runs as written, and drops no value it computes (a bare expression shows nothing
    when run as a script)."""
    tree = ast.parse(EXAMPLES[index])
    dropped = [ast.unparse(statement) for statement in tree.body
               if isinstance(statement, ast.Expr) and not isinstance(statement.value, ast.Call)]
    assert not dropped
    exec(compile(tree, f"README.md example {index}", "exec"), {})
    assert capsys.readouterr().out.strip()
