"""Tests of the Python module (run by `make test` through tests/test_capi.cc with Debian's python3
and numpy): a round trip that equals the CLI's decode, the helpers, and the error cases."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import ntc  # noqa: E402


def png_bytes(img):
    """A minimal 8-bit RGB PNG (zlib and struct from the standard library)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = img.shape[:2]
    raw = b"".join(b"\0" + img[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:72, 0:104]
    img = np.stack([(128 + 100 * np.sin(xx / 7.0)), (128 + 90 * np.cos(yy / 5.0)), (60 + xx + yy) % 256], -1)
    img = np.clip(img + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    data = ntc.encode(img, quality=60)
    assert data[:4] == b"NTCB", data[:4]
    back = ntc.decode(data)
    assert back.shape == img.shape and back.dtype == np.uint8
    p = ntc.psnr(img, back)
    assert 20 < p < 60, p
    assert ntc.psnr(img, img) == float("inf")
    assert len(ntc.encode(img, quality=10)) < len(ntc.encode(img, quality=90))
    # The CLI decodes the same stream to the same pixels.
    ntc_bin = os.environ.get("NTC_BIN")
    if ntc_bin:
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "a.ntc"), "wb") as f:
                f.write(data)
            subprocess.run([ntc_bin, "decode", os.path.join(d, "a.ntc"), "-o", os.path.join(d, "a.ppm")], check=True)
            raw = open(os.path.join(d, "a.ppm"), "rb").read()
            assert raw.endswith(back.tobytes()), "CLI and Python decodes differ"
    # A strided (non-contiguous) view encodes like its copy.
    big = np.zeros((72, 208, 3), np.uint8)
    big[:, ::2] = img
    assert ntc.encode(big[:, ::2], quality=60) == data
    # MS-SSIM: 1 for identical images, lower for noisy ones.
    a = rng.integers(0, 256, (167, 181, 3)).astype(np.uint8)
    assert abs(ntc.ms_ssim(a, a) - 1) < 1e-12
    noisy = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    assert ntc.ms_ssim(a, noisy) < 0.99
    # psnr and ms_ssim agree with `ntc eval` (lib/metrics) on the same reconstruction.
    if ntc_bin:
        yy, xx = np.mgrid[0:167, 0:181]
        pic = np.stack([128 + 100 * np.sin(xx / 9.0), 128 + 90 * np.cos(yy / 6.0), (xx * 2 + yy) % 256], -1)
        pic = np.clip(pic + rng.integers(-10, 11, pic.shape), 0, 255).astype(np.uint8)
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "imgs"))
            with open(os.path.join(d, "imgs", "p.png"), "wb") as f:
                f.write(png_bytes(pic))
            lam = 0.004
            subprocess.run([ntc_bin, "eval", "--data", os.path.join(d, "imgs"), "--lambda", str(lam), "--json",
                            os.path.join(d, "e.json"), "--quiet"], check=True, stdout=subprocess.DEVNULL)
            import json
            row = json.load(open(os.path.join(d, "e.json")))["per_image"][0][0]
        rec = ntc.decode(ntc.encode(pic, lam=lam))
        assert abs(ntc.psnr(pic, rec) - row["psnr"]) < 1e-6, (ntc.psnr(pic, rec), row["psnr"])
        assert abs(ntc.ms_ssim(pic, rec) - row["msssim"]) < 1e-6, (ntc.ms_ssim(pic, rec), row["msssim"])
    # Errors: a message and a status, never a crash.
    for bad in (b"", b"NTCB garbage", data[: len(data) // 2]):
        try:
            ntc.decode(bad)
        except ntc.Error as e:
            assert e.status in (3,), e.status
            assert str(e)
        else:
            raise AssertionError("decoded garbage")
    for args in ((np.zeros((4, 4), np.uint8),), (np.zeros((4, 4, 3), np.float32),)):
        try:
            ntc.encode(*args)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted a bad array")
    try:
        ntc.encode(img, quality=101)
    except ntc.Error as e:
        assert "quality" in str(e) and e.status == 1, (e.status, str(e))
    else:
        raise AssertionError("accepted quality 101")
    try:
        ntc.Model("/nonexistent.ntcm")
    except ntc.Error as e:
        assert e.status == 2, e.status
    else:
        raise AssertionError("loaded a missing file")
    ntc.set_limits(max_pixels=1000)
    try:
        ntc.decode(data)
    except ntc.Error as e:
        assert e.status == 4, (e.status, str(e))
    else:
        raise AssertionError("the pixel limit did not hold")
    ntc.set_limits()
    assert ntc.decode(data).shape == img.shape
    print("python: ok", ntc.version())


if __name__ == "__main__":
    main()
