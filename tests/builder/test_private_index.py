"""Private Python package indexes: a real PEP 503 index with basic auth (``pep503.SimpleIndex``, wheels
built by the test) and a second, anonymous index NAMED "fake public index" standing for PyPI (nobody
can upload to the real one from a test). Locks name each package's index; the first-index rule
defeats dependency confusion; a real buildah build installs the private package; the credential is
in no lock, log line, error or image layer."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
import uuid

import httpx
import pytest
from reprolab_builder import indexes
from reprolab_builder.backends.base import BuildError
from reprolab_builder.backends.buildah import BuildahBackend
from reprolab_builder.build import build_lock
from reprolab_builder.lock import resolve
from reprolab_builder.models import PackageIndex
from reprolab_builder.publish import keyring
from reprolab_common.errors import Invalid
from reprolab_common.natsserver import free_port

from .conftest import make_settings
from .pep503 import SimpleIndex
from .test_buildah import BASE, Log, manifest, podman, remove_built

USER = "pindex-user-" + uuid.uuid4().hex[:8]
PASSWORD = "pindex-pw-" + uuid.uuid4().hex  # unique, so finding it anywhere is a real leak


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The private index (basic auth) and the fake public index, both with ``acme-secret``: the public
    one with a higher version whose code would announce itself (the dependency-confusion attack)."""
    root = tmp_path_factory.mktemp("indexes")
    private = SimpleIndex(root / "private", USER, PASSWORD)
    private.add("acme-secret", "1.0", requires=["acme-helper"], body="VERSION = '1.0'\nORIGIN = 'private'\n")
    public = SimpleIndex(root / "public")  # the fake public index
    public.add("acme-secret", "99.0", body="VERSION = '99.0'\nORIGIN = 'attacker'\n")
    public.add("acme-helper", "2.0")
    private.start()
    public.start()
    yield private, public
    private.stop()
    public.stop()


def workspace_indexes(private: SimpleIndex, public: SimpleIndex, password: str = PASSWORD) -> list[indexes.Index]:
    return [indexes.Index("corp", private.url, "extra", 0, USER, password),
            indexes.Index("public", public.url, "primary")]


SPEC = {"base": BASE, "python": {"version": "3.11", "requirements": ["acme-secret"]}, "entrypoint": ["python3"]}


def _leaks(text: str) -> list[str]:
    import base64

    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return [s for s in (PASSWORD, basic) if s in text]


def test_secret_is_encrypted_and_bound_to_its_row(tmp_path) -> None:
    ring = keyring(make_settings(tmp_path))
    row = PackageIndex(id="i1", workspace="ws", name="corp", url="https://pkgs.example/simple", username="alice")
    row.secret = indexes.encrypt(ring, row, "tok-123")
    assert "tok-123" not in row.secret and indexes.decrypt(ring, row) == "tok-123"
    # re-pointing the row at another URL (where the token would be sent) makes it undecryptable
    for field, value in (("url", "https://evil.example/simple"), ("workspace", "other"), ("name", "x"),
                         ("username", "bob"), ("id", "i2")):
        moved = PackageIndex(**{"id": row.id, "workspace": row.workspace, "name": row.name, "url": row.url,
                                "username": row.username, field: value})
        moved.secret = row.secret
        with pytest.raises(RuntimeError, match="does not decrypt"):
            indexes.decrypt(ring, moved)
    assert "tok-123" not in repr(indexes.Index("corp", row.url, password="tok-123"))


@pytest.mark.parametrize(("name", "url", "message"), [
    ("corp", "https://u:p@pkgs.example/simple", "must not carry credentials"),
    ("pypi", "https://pkgs.example/simple", "'pypi' is reserved"),
    ("Bad_Name", "https://pkgs.example/simple", "is not an index name"),
    ("corp", "ftp://pkgs.example/simple", "is not a package index URL"),
])
def test_bad_index_settings_are_named(name: str, url: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        indexes.check_url(url)
        indexes.check_name(name)


def test_lock_names_each_packages_index_and_the_private_one_wins(tmp_path, served, base_image) -> None:
    private, public = served
    log = Log()
    lock = resolve(SPEC, settings=make_settings(tmp_path), log=log, indexes=workspace_indexes(private, public))
    py = lock["python"]
    got = {p["name"]: (p["version"], p["index"]) for p in py["packages"]}
    # first-index: acme-secret exists on corp, so the fake public index's 99.0 is never considered
    assert got == {"acme-secret": ("1.0", "corp"), "acme-helper": ("2.0", "public")}
    assert py["indexes"] == {"strategy": "first-index", "search": [{"name": "corp", "url": private.url},
                                                                  {"name": "public", "url": public.url}]}
    assert not any(path.startswith("/simple/acme-secret/") for path, _ in public.requests), public.requests
    assert all(ok for _, ok in private.requests) and private.requests  # every request carried the credentials
    text = json.dumps(lock)
    assert not _leaks(text) and USER not in text
    assert not _leaks("\n".join(log))
    # a workspace without indexes gets the same lock as before: no index keys at all
    plain = resolve({"base": BASE, "python": {"requirements": ["six==1.17.0"]}}, settings=make_settings(tmp_path),
                    log=lambda _: None)
    assert "indexes" not in plain["python"] and "index" not in plain["python"]["packages"][0]


def test_wrong_password_and_unreachable_index_are_named(tmp_path, served, base_image) -> None:
    private, public = served
    wrong = "wrong-" + uuid.uuid4().hex
    with pytest.raises(BuildError) as err:
        resolve(SPEC, settings=make_settings(tmp_path), log=lambda _: None,
                indexes=workspace_indexes(private, public, password=wrong))
    message = str(err.value)
    assert f"package index 'corp' ({private.url}) refused the stored credentials (HTTP 401)" in message
    assert wrong not in message and not _leaks(message)
    gone = f"http://127.0.0.1:{free_port()}/simple"
    with pytest.raises(BuildError, match=r"package index 'corp' \(http://127\.0\.0\.1:\d+/simple\) is unreachable"):
        resolve(SPEC, settings=make_settings(tmp_path), log=lambda _: None,
                indexes=[indexes.Index("corp", gone, "extra", 0, USER, PASSWORD), *workspace_indexes(
                    private, public)[1:]])


def test_build_installs_the_private_package_and_the_secret_is_nowhere(tmp_path, served, oci_registry,
                                                                      base_image) -> None:
    private, public = served
    ws_indexes = workspace_indexes(private, public)
    settings = make_settings(tmp_path / "cache", oci_registry.address)
    lock = resolve(SPEC, settings=settings, log=lambda _: None, indexes=ws_indexes)

    # a build without the workspace's credentials cannot fetch the private wheel, and says where from
    with pytest.raises(BuildError, match=r"package index 'corp' \(.*\) refused an anonymous request \(HTTP 401\)"):
        build_lock(lock, settings=make_settings(tmp_path / "anon", oci_registry.address),
                   backend=BuildahBackend(settings), image_ref=f"{oci_registry.address}/pindex/none:v1",
                   log=Log(), indexes=[])

    fetched_before = sum(1 for path, ok in private.requests if path.startswith("/files/") and ok)
    shutil.rmtree(settings.cache_root() / "wheels", ignore_errors=True)  # the build fetches the wheels itself
    ref = f"{oci_registry.address}/pindex-{uuid.uuid4().hex[:8]}/env:v1"
    log = Log()
    result = build_lock(lock, settings=settings, backend=BuildahBackend(settings), image_ref=ref, log=log,
                        indexes=ws_indexes)
    try:
        assert sum(1 for path, ok in private.requests if path.startswith("/files/") and ok) > fetched_before
        out = podman("run", "--rm", "--network=none", "--tls-verify=false", "--entrypoint", "", ref, "python3", "-c",
                     "import acme_secret, acme_helper; print(acme_secret.VERSION, acme_secret.ORIGIN)")
        assert out == "1.0 private"
        assert not _leaks("\n".join(log)) and USER not in "\n".join(log)
        digest, man = manifest(oci_registry.address, ref)
        assert digest == result.digest
        name = ref.removeprefix(oci_registry.address + "/").rsplit(":", 1)[0]
        needles = [s.encode() for s in (PASSWORD, USER)]
        checked = 0
        config = httpx.get(f"http://{oci_registry.address}/v2/{name}/blobs/{man['config']['digest']}").content
        assert not any(n in config for n in needles)  # history, env, labels
        for layer in man["layers"]:
            blob = httpx.get(f"http://{oci_registry.address}/v2/{name}/blobs/{layer['digest']}",
                             follow_redirects=True).content
            raw = gzip.decompress(blob)
            assert not any(n in raw for n in needles), layer["digest"]
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                checked += sum(1 for m in tar if m.isfile())
        assert checked > 100
    finally:
        try:
            remove_built(ref)
        except subprocess.CalledProcessError:
            pass
