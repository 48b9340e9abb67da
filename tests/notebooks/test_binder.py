"""binder/ is enough to run the notebooks: its requirements install into a fresh venv (no
system site-packages, no project .venv), binder/postBuild installs the package from a copy of
the checkout, and notebooks run in that venv's kernel.

Like on mybinder.org, Orthanc is not on the PATH, so the PACS notebook takes its second-node
fallback (a second workbench PACS); DCMTK is there, as binder/apt.txt installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = ["01-quickstart.ipynb", "02-your-own-pacs.ipynb"]
IGNORED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "var",
    "test-artifacts",
    "__pycache__",
    "*.egg-info",
    "build",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    "benchmarks",
)


def _path_without_orthanc(venv_bin: Path) -> str:
    folders = [str(venv_bin)]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and not (Path(folder) / "Orthanc").exists():
            folders.append(folder)
    return os.pathsep.join(folders)


# Installing ~150 distributions dominates: 5-8 minutes with pip on a 2-core machine without a
# warm cache. uv resolves and installs the same requirements file in parallel, from a cache it
# keeps between runs, so the test uses it where it is installed (the test extra has it).
@pytest.mark.slow
def test_binder_environment_installs_and_runs_the_notebooks(tmp_path) -> None:
    started = time.monotonic()
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=IGNORED)
    env_dir = tmp_path / "binder-venv"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:
        subprocess.run(
            [uv, "venv", "--quiet", "--seed", "--python", sys.executable, str(env_dir)], check=True
        )
    else:
        venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = _path_without_orthanc(env_dir / "bin")
    env["PYTHONWARNINGS"] = "ignore"

    def run(*command: str, cwd: Path = checkout, timeout: float = 600) -> None:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, (
            f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )

    if uv:
        run(
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-r",
            "binder/requirements.txt",
        )
    else:
        run(str(python), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt")
    run("bash", "binder/postBuild")
    installed = time.monotonic()

    # The venv's own interpreter, not this one, imports the installed package.
    probe = subprocess.run(
        [str(python), "-c", "import sys, workbench; print(workbench.__file__, sys.prefix)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in probe.stdout and str(REPO) not in probe.stdout, probe.stdout
    assert shutil.which("Orthanc", path=env["PATH"]) is None
    # JupyterLab's launcher gets the PACS's web page through jupyter-server-proxy.
    launchers = subprocess.run(
        [
            str(python),
            "-c",
            "from importlib.metadata import entry_points; print([e.name for e"
            " in entry_points(group='jupyter_serverproxy_servers')])",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "workbench-pacs" in launchers.stdout, launchers.stdout

    for name in NOTEBOOKS:
        output = tmp_path / f"executed-{name}"
        run(
            str(env_dir / "bin" / "jupyter"),
            "execute",
            "--timeout=240",
            f"--output={output}",
            name,
            cwd=checkout / "notebooks",
            timeout=900,
        )
        executed = nbformat.read(output, as_version=4)
        errors = [
            o
            for cell in executed.cells
            for o in cell.get("outputs", [])
            if o.output_type == "error"
        ]
        assert not errors, errors
    text = "\n".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []))
    assert "Orthanc is not installed here" in text and "35 completed, 0 failed" in text
    print(
        f"binder venv: install {installed - started:.0f} s, notebooks "
        f"{time.monotonic() - installed:.0f} s",
        file=sys.stderr,
    )


def test_binder_requirements_keep_in_step_with_the_package() -> None:
    """Every runtime and notebook dependency of pyproject.toml is in binder/requirements.txt."""
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    lines = (REPO / "binder" / "requirements.txt").read_text().splitlines()
    listed = {
        Requirement(line).name.lower()
        for line in lines
        if line.strip() and not line.startswith("#")
    }
    missing = sorted({Requirement(spec).name.lower() for spec in needed} - listed)
    assert not missing, f"binder/requirements.txt lacks {missing}"
