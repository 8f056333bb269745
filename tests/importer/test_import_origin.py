"""What environment.created records as an import's origin: never a credential or a signed URL's token."""

from __future__ import annotations

import pytest
from reprolab_gateway.importer.flow import source_label


@pytest.mark.parametrize(("source", "label"), [
    ("/srv/course/repo", "path /srv/course/repo"),
    ("https://example.org/a/repo.tar.gz", "url https://example.org/a/repo.tar.gz"),
    ("https://user:s3cret@example.org:8443/a/repo.zip?X-Amz-Signature=abc#frag", "url https://example.org:8443/a/repo.zip"),
    ("http://[::1]:8000/r.tar.gz?token=t", "url http://[::1]:8000/r.tar.gz"),
])
def test_the_origin_names_the_place_without_secrets(source: str, label: str) -> None:
    assert source_label(source) == label
