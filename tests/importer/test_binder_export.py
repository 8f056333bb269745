"""A version as a Binder-ready folder: from the lock (exact pins with hashes), and what repo2docker
then detects in it is what the lock holds (the round trip through our own detection)."""

from __future__ import annotations

import io
import zipfile

from reprolab_gateway.importer import detect_repository, tree_of
from reprolab_gateway.importer.binder_export import binder_folder, zip_folder
from reprolab_gateway.importer.formats import script_step

H = "sha256:" + "a" * 64


def lock(**extra) -> dict:
    return {"format": "reprolab-lock/1", "base": {"ref": "b", "python": "3.11"},
            "python": {"version": "3.11", "packages": [
                {"name": "six", "version": "1.16.0", "hashes": [H, "sha256:" + "b" * 64]},
                {"name": "idna", "version": "3.7", "hashes": [H]}]},
            "apt": [{"name": "jq", "version": "1.6-2.1"}],
            "r": [{"name": "jsonlite", "deb": "r-cran-jsonlite", "version": "1.8.4+dfsg-1"}],
            "r_system": [{"name": "r-base-core", "version": "4.2.2.20221110-2"}], **extra}


def test_configuration_comes_from_the_lock_with_hashes_and_pins() -> None:
    files = binder_folder(lock(), environment="iris", version=3)
    assert files["binder/requirements.txt"] == (
        f"idna==3.7 \\\n    --hash={H}\nsix==1.16.0 \\\n    --hash={H} \\\n    --hash=sha256:{'b' * 64}\n")
    assert files["binder/runtime.txt"] == "python-3.11\n"
    assert files["binder/apt.txt"] == "jq=1.6-2.1\nr-base-core=4.2.2.20221110-2\nr-cran-jsonlite=1.8.4+dfsg-1\n"
    assert "binder/postBuild" not in files and "iris v3" in files["REPROLAB-EXPORT.txt"]
    # repo2docker reads it back as the python pack with exactly those pins (hash lines are options)
    detected = detect_repository(tree_of(files))
    assert detected.buildpack == "python" and detected.binder_dir == "binder"
    assert detected.spec(base="b")["python"] == {"version": "3.11", "requirements": ["idna==3.7", "six==1.16.0"]}
    assert detected.spec(base="b")["apt"] == ["jq=1.6-2.1", "r-base-core=4.2.2.20221110-2",
                                              "r-cran-jsonlite=1.8.4+dfsg-1"]


def test_imported_repository_keeps_its_files_and_its_postbuild_runs_from_ours() -> None:
    repo = tree_of({"binder/postBuild": "#!/bin/sh\necho hi\n", "binder/start": "#!/bin/sh\nexec \"$@\"\n",
                    "binder/requirements.txt": "six\n", "requirements.txt": "idna\n", "notebook.ipynb": "{}",
                    "environment.yml": "dependencies: [x]"}, {"binder/postBuild", "binder/start"})
    steps = [script_step("binder/postBuild"), {"run": "pip install .", "user": "root"}]
    files = binder_folder(lock(build_steps=steps, start="binder/start"), environment="e", version=1, repository=repo)
    assert files["notebook.ipynb"] == b"{}" and files["binder/start"].startswith(b"#!/bin/sh")
    assert files["requirements.txt"] == b"idna\n"  # root files are not configuration when binder/ exists
    assert files["environment.yml"] == b"dependencies: [x]"
    assert files["binder/postBuild.repository"] == b"#!/bin/sh\necho hi\n"
    post = files["binder/postBuild"]
    assert "./binder/postBuild.repository" in post and "pip install ." in post
    assert "runs as the user" in files["REPROLAB-EXPORT.txt"]
    data = zip_folder(files, repo.executable)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
    assert modes["binder/postBuild"] == 0o755 and modes["binder/start"] == 0o755 and modes["notebook.ipynb"] == 0o644
    assert zip_folder(files, repo.executable) == data  # same folder, same bytes
