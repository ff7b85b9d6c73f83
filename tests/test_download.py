"""Finding and fetching the published files, without any network.

Downloads use ``file://`` addresses (urllib serves them like http), and
"offline" is an opener that raises ``URLError``.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import re
import urllib.error

import numpy as np
import pytest

from numvgg.errors import WeightDownloadError
from numvgg.io import download
from numvgg.io.download import get_file, get_imagenet_class_index_path, get_vgg16_weights_path


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """A private Keras home, an empty checkout weights/ folder and /tmp/.keras stand-in."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    checkout = tmp_path / "checkout_weights"
    checkout.mkdir()
    monkeypatch.setattr(download, "CHECKOUT_WEIGHTS_DIR", str(checkout))
    monkeypatch.setattr(download, "_tmp_keras_home", lambda: str(tmp_path / "tmp_keras"))
    return {"home": home, "cache": home / "models", "checkout": checkout, "root": tmp_path}


@pytest.fixture
def source(tmp_path):
    """A 2.5 MB file served at a file:// address (more than one download chunk)."""
    data = np.random.default_rng(0).bytes(2_500_000)
    path = tmp_path / "origin" / "blob.h5"
    path.parent.mkdir()
    path.write_bytes(data)
    return {
        "data": data,
        "url": path.as_uri(),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def go_offline(monkeypatch):
    """Every download attempt fails as it does without network; returns the addresses tried."""
    tried = []

    def offline(url, timeout=None):
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "urlopen", offline)
    return tried


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


def test_downloads_into_the_keras_cache_with_a_progress_bar(folders, source, capsys):
    path = get_file("blob.h5", source["url"], file_hash=source["md5"])
    assert path == str(folders["cache"] / "blob.h5")
    with open(path, "rb") as f:
        assert f.read() == source["data"]
    err = capsys.readouterr().err
    assert f"Downloading data from {source['url']}" in err
    assert "2.5/2.5 MB" in err and "100%" in err
    assert leftovers(folders["cache"]) == []


def test_cached_file_is_not_downloaded_again(folders, source, monkeypatch):
    first = get_file("blob.h5", source["url"], file_hash=source["md5"])
    tried = go_offline(monkeypatch)
    assert get_file("blob.h5", source["url"], file_hash=source["md5"]) == first
    assert tried == []


def test_corrupt_cached_file_is_downloaded_again(folders, source):
    folders["cache"].mkdir(parents=True)
    (folders["cache"] / "blob.h5").write_bytes(source["data"][:1000])  # an interrupted copy
    with pytest.warns(UserWarning, match=f"md5 is .* but {source['md5']} is expected"):
        path = get_file("blob.h5", source["url"], file_hash=source["md5"])
    with open(path, "rb") as f:
        assert f.read() == source["data"]


def test_download_with_the_wrong_hash_keeps_nothing(folders, source):
    wrong = "0" * 32
    with pytest.raises(WeightDownloadError, match=f"md5 is {source['md5']}, not the expected {wrong}"):
        get_file("blob.h5", source["url"], file_hash=wrong)
    assert not (folders["cache"] / "blob.h5").exists()
    assert leftovers(folders["cache"]) == []


def test_a_good_cached_file_survives_a_failed_download(folders, source, monkeypatch):
    folders["cache"].mkdir(parents=True)
    cached = folders["cache"] / "blob.h5"
    cached.write_bytes(b"old but fine")
    good = hashlib.md5(b"old but fine").hexdigest()
    assert get_file("blob.h5", source["url"], file_hash=good) == str(cached)
    with pytest.warns(UserWarning, match="Ignoring"), pytest.raises(WeightDownloadError):
        get_file("blob.h5", source["url"], file_hash="1" * 32)  # mismatch: re-download, which fails
    assert cached.read_bytes() == b"old but fine"


def test_sha256_hashes_work_too(folders, source):
    path = get_file("blob.h5", source["url"], file_hash=source["sha256"])
    with open(path, "rb") as f:
        assert f.read() == source["data"]


def test_offline_error_names_the_file_the_address_and_the_folders(folders, monkeypatch):
    tried = go_offline(monkeypatch)
    with pytest.raises(WeightDownloadError) as info:
        get_vgg16_weights_path(include_top=False, search_dirs=[folders["root"] / "mine"])
    message = str(info.value)
    published = download.VGG16_WEIGHTS_NOTOP
    assert tried == [published.origin]
    assert f"'{published.fname}'" in message and published.origin in message
    for folder in download.search_folders("models", [folders["root"] / "mine"]):
        assert folder in message
    assert str(folders["checkout"]) in message and str(folders["cache"]) in message
    assert "Temporary failure in name resolution" in message
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert leftovers(folders["cache"]) == []


def test_search_dirs_and_the_checkout_folder_come_first(folders, source, monkeypatch):
    tried = go_offline(monkeypatch)
    mine = folders["root"] / "mine"
    mine.mkdir()
    (folders["checkout"] / "blob.h5").write_bytes(source["data"])
    assert get_file("blob.h5", source["url"], file_hash=source["md5"]) == str(folders["checkout"] / "blob.h5")
    (mine / "blob.h5").write_bytes(source["data"])
    assert get_file("blob.h5", source["url"], file_hash=source["md5"], search_dirs=[mine]) == str(
        mine / "blob.h5"
    )
    (mine / "blob.h5").write_bytes(b"something else")  # wrong md5: skipped, never used
    with pytest.warns(UserWarning, match="Ignoring"):
        found = get_file("blob.h5", source["url"], file_hash=source["md5"], search_dirs=[mine])
    assert found == str(folders["checkout"] / "blob.h5")
    assert tried == []


def test_cache_dir_is_keras_home_then_tilde_keras_then_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert download.cache_dir("models") == str(tmp_path / "kh" / "models")
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert download.cache_dir("models") == str(tmp_path / "user" / ".keras" / "models")
    # A home where ~/.keras cannot be created (here: HOME is a file) falls back to /tmp/.keras.
    (tmp_path / "not_a_folder").write_text("x")
    monkeypatch.setenv("HOME", str(tmp_path / "not_a_folder"))
    monkeypatch.setattr(download, "_tmp_keras_home", lambda: str(tmp_path / "tmp_keras"))
    assert download.cache_dir("models") == str(tmp_path / "tmp_keras" / "models")


def test_published_files_are_keras_own(keras):
    """Addresses and md5s are the ones Keras' own code uses."""
    from keras.src.applications import imagenet_utils, vgg16

    source = inspect.getsource(vgg16)
    for published, address in (
        (download.VGG16_WEIGHTS, vgg16.WEIGHTS_PATH),
        (download.VGG16_WEIGHTS_NOTOP, vgg16.WEIGHTS_PATH_NO_TOP),
    ):
        assert published.origin == address
        assert re.search(
            rf'"{published.fname}",\s*\w+,\s*cache_subdir="models",\s*'
            rf'file_hash="{published.md5}"',
            source,
        )
    assert download.IMAGENET_CLASS_INDEX.origin == imagenet_utils.CLASS_INDEX_PATH
    assert f'file_hash="{download.IMAGENET_CLASS_INDEX.md5}"' in inspect.getsource(imagenet_utils)


def test_published_helpers_ask_for_the_right_files(folders, monkeypatch):
    tried = go_offline(monkeypatch)
    for call in (
        lambda: get_vgg16_weights_path(True),
        lambda: get_vgg16_weights_path(False),
        get_imagenet_class_index_path,
    ):
        with pytest.raises(WeightDownloadError):
            call()
    assert tried == [
        download.VGG16_WEIGHTS.origin,
        download.VGG16_WEIGHTS_NOTOP.origin,
        download.IMAGENET_CLASS_INDEX.origin,
    ]


def test_fname_defaults_to_the_address_and_must_be_a_bare_name(folders, source):
    path = get_file(None, source["url"], file_hash=source["md5"])
    assert os.path.basename(path) == "blob.h5"
    with pytest.raises(ValueError, match="bare file name"):
        get_file("sub/blob.h5", source["url"])


def test_progress_bar_outside_a_terminal_prints_one_line():
    stream = io.StringIO()
    bar = download._ProgressBar(4_000_000, stream=stream, width=10)
    for _ in range(4):
        bar.update(1_000_000)
    bar.close()
    assert stream.getvalue() == "     4.0/4.0 MB [==========] 100%\n"


# -- issue 15: cut-short and stalled downloads, from a local HTTP server ----------------------------
@pytest.fixture
def http_server():
    """A local HTTP server whose handler each test sets: ``server.behaviour(handler)``."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        behaviour = None

        def do_GET(self):
            type(self).behaviour(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/blob.h5"
    server.handler = Handler
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_download_cut_short_is_never_kept_even_without_a_hash(folders, http_server):
    def cut_short(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "200000")
        handler.end_headers()
        handler.wfile.write(b"x" * 50_000)  # then the connection closes
        handler.close_connection = True

    http_server.handler.behaviour = cut_short
    with pytest.raises(WeightDownloadError, match=r"cut short: 50,000 of the 200,000 bytes"):
        get_file("blob.h5", http_server.url)
    assert not (folders["cache"] / "blob.h5").exists()
    assert leftovers(folders["cache"]) == []


def test_a_dripping_server_is_detected_as_stalled(folders, http_server, monkeypatch):
    import time

    monkeypatch.setattr(download, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(download, "STALL_MIN_BYTES", 1000)

    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)

    http_server.handler.behaviour = drip
    with pytest.raises(WeightDownloadError, match=r"stalled: only \d+ bytes arrived in the last"):
        get_file("blob.h5", http_server.url)
    assert not (folders["cache"] / "blob.h5").exists()
    assert leftovers(folders["cache"]) == []


def test_a_silent_server_hits_the_read_timeout(folders, http_server, monkeypatch):
    import time

    monkeypatch.setattr(download, "READ_TIMEOUT_SECONDS", 0.3)

    def silent(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.flush()
        time.sleep(1.5)

    http_server.handler.behaviour = silent
    with pytest.raises(WeightDownloadError, match=r"sent nothing for 0.3 s \(read timeout\)"):
        get_file("blob.h5", http_server.url)
    assert leftovers(folders["cache"]) == []


def test_a_complete_http_download_is_kept(folders, http_server):
    data = np.random.default_rng(1).bytes(300_000)

    def whole(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    http_server.handler.behaviour = whole
    path = get_file("blob.h5", http_server.url, file_hash=hashlib.md5(data).hexdigest())
    with open(path, "rb") as f:
        assert f.read() == data
