"""The ``data_file`` fixture: text_runs.TEXT in a file, once per module."""
import pytest

from tests.train.text_runs import TEXT


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(TEXT)
    return path
