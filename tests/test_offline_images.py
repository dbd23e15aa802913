"""Images answered without the network: the built-in sample frames (``GET /_mock/samples``, a stable
URL per frame and format on every listener), the API document's two sample URLs, and a user's own
CDN URLs mapped to a directory (``--asset-map``). None of them is ever fetched, and their bytes get
exactly the checks a download gets."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from fixtures.frames import frame_bytes
from mock_server.api import image_intake
from mock_server.assets import samples
from mock_server.assets.asset_map import AssetMapping
from mock_server.cli import StartupError, build_parser, settings_from_args
from tests.conftest import assert_catalogue_error, auth, create, kf2v_body
from tests.test_admin_access import PEER_HEADER, peer_client  # noqa: F401  (a fixture)

DOC_FIRST, DOC_LAST = list(samples.DOC_SAMPLE_URLS)


@pytest.fixture
def no_network(monkeypatch):
    """Record every download the intake attempts, and fail it (no test here may need one)."""
    attempts: list[str] = []

    async def refuse(url, *args, **kwargs):
        attempts.append(url)
        raise OSError("this test allows no connection")
    monkeypatch.setattr(image_intake, "fetch", refuse)
    return attempts


def body_with(first: str, last: str | None = None) -> dict:
    body = kf2v_body()
    body["input"].update(first_frame_url=first, last_frame_url=last or first)
    return body


async def finished(client, task_id: str) -> dict:
    await client.emulator.synthesizer.drain()
    await client.post("/_mock/clock", json={"advance_seconds": 60})
    return await (await client.get(f"/api/v1/tasks/{task_id}", headers=auth())).json()


# --- /_mock/samples --------------------------------------------------------------------------------
async def test_the_listing_names_every_frame_in_every_format_on_this_listener(client):
    response = await client.get("/_mock/samples")
    assert response.status == 200
    listing = await response.json()
    origin = f"http://{client.host}:{client.port}"
    assert [s["name"] for s in listing["samples"]] == ["first", "last"]
    for sample in listing["samples"]:
        assert set(sample["urls"]) == {"png", "jpg", "jpeg", "bmp", "webp"}
        for ext, url in sample["urls"].items():
            assert url == f"{origin}/_mock/samples/{sample['name']}.{ext}"
            served = await client.get(url.removeprefix(origin))
            assert served.status == 200 and served.content_type == samples.mime_type(ext)
            image = Image.open(io.BytesIO(await served.read()))
            assert image.format == samples.FORMATS[ext][0]
            assert image.size == (sample["width"], sample["height"]) == samples.SIZE
    assert listing["doc_sample_urls"] == {DOC_FIRST: f"{origin}/_mock/samples/first.png",
                                          DOC_LAST: f"{origin}/_mock/samples/last.png"}


async def test_an_unknown_sample_is_a_404(client):
    response = await client.get("/_mock/samples/first.gif")
    assert response.status == 404 and (await response.json())["code"] == "NotFound"


async def test_any_peer_may_read_the_samples_but_nothing_else(peer_client):  # noqa: F811
    client = await peer_client()
    far = {PEER_HEADER: "192.0.2.50"}
    assert (await client.get("/_mock/samples", headers=far)).status == 200
    assert (await client.get("/_mock/samples/last.webp", headers=far)).status == 200
    assert (await client.head("/_mock/samples/last.webp", headers=far)).status == 200
    assert (await client.get("/_mock/health", headers=far)).status == 403
    assert (await client.post("/_mock/samples", headers=far)).status == 403


@pytest.mark.parametrize("ext", sorted(samples.FORMATS))
async def test_a_task_from_sample_urls_succeeds_without_any_connection(make_client, no_network, ext):
    # Even with loopback image URLs denied: nothing is fetched, whatever host the URL names.
    client = await make_client(allow_loopback_image_urls=False)
    first = f"http://127.0.0.1:{client.port}/_mock/samples/first.{ext}"
    last = f"http://kf2v-mock.internal:8080/_mock/samples/last.{ext}"
    status, created = await create(client, body_with(first, last))
    assert status == 200, created
    answer = await finished(client, created["output"]["task_id"])
    assert answer["output"]["task_status"] == "SUCCEEDED"
    assert no_network == []


async def test_an_unknown_sample_url_is_a_failed_download(client, no_network):
    status, answer = await create(client, body_with("http://127.0.0.1:1/_mock/samples/third.png"))
    assert_catalogue_error(status, answer, "media_download_failed")
    assert no_network == []


# --- the API document's own sample URLs ------------------------------------------------------------
async def test_the_documents_sample_urls_resolve_to_the_built_in_frames(client, no_network):
    status, created = await create(client, body_with(DOC_FIRST, DOC_LAST))
    assert status == 200, created
    assert (await finished(client, created["output"]["task_id"]))["output"]["task_status"] == "SUCCEEDED"
    assert no_network == []


async def test_turned_off_they_are_fetched_like_any_url(make_client, no_network):
    client = await make_client(doc_sample_urls=False)
    status, answer = await create(client, body_with(DOC_FIRST, DOC_LAST))
    assert_catalogue_error(status, answer, "media_download_failed")
    assert no_network[0] == DOC_FIRST


# --- --asset-map ---------------------------------------------------------------------------------
@pytest.fixture
def cdn_dir(tmp_path):
    root = tmp_path / "cdn"
    (root / "img" / "2025").mkdir(parents=True)
    (root / "img" / "2025" / "a b.png").write_bytes(frame_bytes(320, 240, seed=1, fmt="PNG"))
    (root / "img" / "2025" / "last.jpg").write_bytes(frame_bytes(320, 240, seed=2, fmt="JPEG"))
    (root / "img" / "notes.txt").write_text("not an image")
    (root / "img" / "big.png").write_bytes(frame_bytes(320, 240, seed=3, fmt="PNG")
                                           + bytes(10 * 1024 * 1024))
    (tmp_path / "secret.png").write_bytes(frame_bytes(320, 240, seed=4, fmt="PNG"))
    return root


async def test_mapped_urls_are_served_from_the_directory(make_client, no_network, cdn_dir):
    client = await make_client(asset_map=[AssetMapping.parse(f"https://CDN.example.com/assets={cdn_dir}")])
    status, created = await create(client, body_with(
        "https://cdn.example.com/assets/img/2025/a%20b.png?Expires=1&Signature=x#top",
        "https://cdn.example.com/assets/img/2025/last.jpg"))
    assert status == 200, created
    assert (await finished(client, created["output"]["task_id"]))["output"]["task_status"] == "SUCCEEDED"
    assert no_network == []


@pytest.mark.parametrize("path, error", [
    ("img/missing.png", "media_download_failed"),          # as a 404 from the CDN would be
    ("img/../../secret.png", "media_download_failed"),     # never outside the directory
    ("img/%2e%2e/%2e%2e/secret.png", "media_download_failed"),
    ("img", "media_download_failed"),                      # a directory is no image
    ("img/notes.txt", "media_format"),                     # the checks of a download
    ("img/big.png", "image_size_unsupported"),
])
async def test_mapped_urls_get_the_checks_of_a_download_and_never_a_fetch(make_client, no_network,
                                                                         cdn_dir, path, error):
    client = await make_client(asset_map=[AssetMapping.parse(f"https://cdn.example.com/assets/={cdn_dir}")])
    status, answer = await create(client, body_with(f"https://cdn.example.com/assets/{path}"))
    assert_catalogue_error(status, answer, error)
    assert no_network == []


async def test_the_longest_prefix_wins_and_other_urls_are_fetched(make_client, no_network, cdn_dir):
    client = await make_client(asset_map=[
        AssetMapping.parse(f"https://cdn.example.com/={cdn_dir / 'img'}"),
        AssetMapping.parse(f"https://cdn.example.com/deep/={cdn_dir / 'img' / '2025'}")])
    status, created = await create(client, body_with("https://cdn.example.com/deep/last.jpg",
                                                     "https://cdn.example.com/2025/last.jpg"))
    assert status == 200, created
    status, answer = await create(client, body_with("https://cdn.example.com.evil/2025/last.jpg"))
    assert_catalogue_error(status, answer, "media_download_failed")
    assert set(no_network) == {"https://cdn.example.com.evil/2025/last.jpg"}  # both frames


def test_asset_map_flags_and_environment(monkeypatch, cdn_dir, tmp_path):
    args = build_parser().parse_args(["serve", "--asset-map", f"https://a.example/x={cdn_dir}",
                                      "--asset-map", f"http://b.example:8080/={tmp_path}"])
    assert [str(m) for m in settings_from_args(args).asset_map] == [
        f"https://a.example/x/={cdn_dir}", f"http://b.example:8080/={tmp_path}"]
    monkeypatch.setenv("KF2V_MOCK_ASSET_MAP", f"https://c.example/={cdn_dir}, https://d.example/={tmp_path}")
    from_env = settings_from_args(build_parser().parse_args(["serve"]))
    assert [m.prefix for m in from_env.asset_map] == ["https://c.example/", "https://d.example/"]
    with pytest.raises(StartupError, match="not a directory"):
        build_parser().parse_args(["serve", "--asset-map", f"https://a.example/={tmp_path / 'none'}"])
    assert settings_from_args(build_parser().parse_args(["serve", "--no-doc-sample-urls"])).doc_sample_urls is False
