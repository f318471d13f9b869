#!/usr/bin/env python3
"""Rate–distortion of the overfitted codec (`ntc encode --overfit`, issue #18) on a few images,
against WebP and ntc's amortised default model on the same images, with encode times.

  scripts/overfit_eval.py --images A.png B.png ... --out DIR [--crop 256] [--lambdas 0.0016,0.0064,0.0256]
                          [--iters 10000] [--widths SYN,ARM] [--upsample bilinear|learned] [--threads 1]
                          [--jobs 1] [--ntc build/ntc]
  scripts/overfit_eval.py --merge DIR1 DIR2 ... --out DIR   (runs of the same settings on different
                          images, e.g. two halves run side by side on one thread each: one summary)

Each image is centre-cropped to --crop × --crop pixels (0: the whole image). Writes DIR/overfit.json,
DIR/webp.json and DIR/amortised.json (mean bpp and RGB PSNR per rate point, `ntc bdrate`'s format,
with the per-image rows), DIR/summary.json (BD-rates per image and of the means) and prints the
summary. Needs ImageMagick's `convert` (PNG → PPM) and WebP's cwebp/dwebp.

--jobs N runs N overfitted encodes at a time (each with --threads threads): on a 2-core machine
--jobs 2 --threads 1 keeps both cores busy with the image × rate encodes, in one run and one summary.
Each encode's time is then its own wall-clock, beside the others.

Every finished encode is appended to DIR/overfit_rows.jsonl with its settings at once, and a run
started again with the same settings and DIR takes those rows instead of encoding them again, so a
run that is stopped loses only the encodes under way.
"""
import argparse
import concurrent.futures
import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time


def read_ppm(data):
    # Four header fields (magic, width, height, maxval) separated by whitespace or comments, then
    # exactly one whitespace byte: the pixels may begin with bytes that look like whitespace (9–13,
    # 32: dark pixels), so they must not be split off with the header.
    fields, i = [], 0
    while len(fields) < 4:
        while i < len(data) and data[i : i + 1].isspace():
            i += 1
        if data[i : i + 1] == b"#":
            while i < len(data) and data[i : i + 1] != b"\n":
                i += 1
            continue
        j = i
        while j < len(data) and not data[j : j + 1].isspace():
            j += 1
        fields.append(data[i:j])
        i = j
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise SystemExit("expected an 8-bit binary PPM")
    w, h = int(fields[1]), int(fields[2])
    px = data[i + 1 : i + 1 + w * h * 3]
    if len(px) != w * h * 3:
        raise SystemExit("truncated PPM")
    return w, h, px


def load(path):
    if path.endswith(".ppm"):
        return read_ppm(open(path, "rb").read())
    return read_ppm(subprocess.run(["convert", path, "ppm:-"], capture_output=True, check=True).stdout)


def write_ppm(path, w, h, px):
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + px)


def psnr(a, b):
    if len(a) != len(b):
        raise SystemExit("psnr: images of %d and %d samples" % (len(a), len(b)))
    mse = sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


def run(cmd):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(" ".join(cmd) + ": " + r.stderr.strip())
    return time.time() - t0


def curve(name, rows, key):
    """Means over images of each rate point (rows[image][point])."""
    n = len(rows[0])
    return {
        "name": name,
        "bpp": [sum(r[i]["bpp"] for r in rows) / len(rows) for i in range(n)],
        "psnr_rgb": [sum(r[i]["psnr"] for r in rows) / len(rows) for i in range(n)],
        key: rows,
    }


def bd(ntc, ref, test, tmp):
    a, b = os.path.join(tmp, "ref.json"), os.path.join(tmp, "test.json")
    json.dump(ref, open(a, "w"))
    json.dump(test, open(b, "w"))
    r = subprocess.run([ntc, "bdrate", a, b, "--json"], capture_output=True, text=True)
    return json.loads(r.stdout)["bd_rate_percent"] if r.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+")
    ap.add_argument("--merge", nargs="+", default=[], help="output folders of earlier runs to merge into --out")
    ap.add_argument("--out", required=True)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lambdas", default="0.0016,0.0064,0.0256")
    ap.add_argument("--iters", type=int, default=10000)
    ap.add_argument("--widths", default="", help="the decoder's hidden widths SYN,ARM (ntc's default if empty)")
    ap.add_argument("--upsample", default="bilinear", choices=["bilinear", "learned"],
                    help="the overfitted decoder's upsampling (ntc's --overfit-upsample)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="overfitted encodes run at a time")
    ap.add_argument("--ntc", default="build/ntc")
    ap.add_argument("--webp-q", default="5,15,30,50,70,85,95")
    ap.add_argument("--amortised-q", default="5,20,35,50,65,80,95")
    a = ap.parse_args()
    if bool(a.images) == bool(a.merge):
        ap.error("give --images or --merge")
    os.makedirs(a.out, exist_ok=True)
    tmp = os.path.join(a.out, "tmp")
    os.makedirs(tmp, exist_ok=True)
    lambdas = [float(x) for x in a.lambdas.split(",")]
    ov_rows, webp_rows, am_rows = [], [], []
    if a.merge:
        meta = None
        for d in a.merge:
            m = json.load(open(os.path.join(d, "summary.json")))
            dflt = {"widths": "16,8", "threads": 1, "upsample": "bilinear"}  # summaries written before these were recorded
            key = {k: m.get(k, dflt.get(k)) for k in ("iters", "widths", "upsample", "crop", "lambdas", "threads")}
            if meta is not None and key != meta:
                raise SystemExit("%s: other settings than %s (%s against %s)" % (d, a.merge[0], key, meta))
            meta = key
            for rows, name in ((ov_rows, "overfit"), (webp_rows, "webp"), (am_rows, "amortised")):
                rows.extend(json.load(open(os.path.join(d, name + ".json")))["images"])
        a.iters, a.widths, a.upsample, a.crop, lambdas, a.threads = (meta["iters"], meta["widths"], meta["upsample"],
                                                                     meta["crop"], meta["lambdas"], meta["threads"])
        a.images = [rows[0]["image"] for rows in ov_rows]
        return summarise(a, lambdas, ov_rows, webp_rows, am_rows, tmp)
    if a.jobs < 1:
        ap.error("--jobs wants >= 1")
    crops = []  # (base, src, crop bytes, pixels) per image
    for img in a.images:
        w, h, px = load(img)
        c = a.crop or min(w, h)
        cw, ch = (w, h) if not a.crop else (c, c)
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        crop = b"".join(px[((y0 + r) * w + x0) * 3 : ((y0 + r) * w + x0 + cw) * 3] for r in range(ch))
        base = os.path.splitext(os.path.basename(img))[0]
        src = os.path.join(tmp, base + ".ppm")
        write_ppm(src, cw, ch, crop)
        crops.append((base, src, crop, cw * ch))

    settings = {"iters": a.iters, "widths": a.widths or "16,8", "upsample": a.upsample, "crop": a.crop,
                "threads": a.threads, "ntc_sha256": hashlib.sha256(open(a.ntc, "rb").read()).hexdigest()}
    rows_path = os.path.join(a.out, "overfit_rows.jsonl")
    earlier = {}  # (image, λ) -> a row of an earlier run with these settings
    if os.path.exists(rows_path):
        for line in open(rows_path):
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if r.get("settings") == settings:
                earlier[(r["image"], r["lambda"])] = r
    lock = threading.Lock()

    def overfit_one(i, lam):
        base, src, crop, npx = crops[i]
        if (base, lam) in earlier:
            print("# %s at %g: from %s" % (base, lam, rows_path), file=sys.stderr, flush=True)
            return {k: v for k, v in earlier[(base, lam)].items() if k != "settings"}
        s = os.path.join(tmp, "%s_%g.ntco" % (base, lam))
        d = os.path.join(tmp, "%s_%g.ppm" % (base, lam))
        t = run([a.ntc, "--threads", str(a.threads), "encode", src, "-o", s, "--iters", str(a.iters), "--lambda", str(lam), "--quiet"]
                + (["--overfit-widths", a.widths] if a.widths else [])
                + (["--overfit-upsample", a.upsample] if a.upsample != "bilinear" else []))
        td = run([a.ntc, "--threads", "1", "decode", s, "-o", d])
        row = {"image": base, "lambda": lam, "bpp": 8 * os.path.getsize(s) / npx, "psnr": psnr(crop, load(d)[2]),
               "encode_s": t, "decode_s": td}
        print(json.dumps(row), flush=True)
        with lock, open(rows_path, "a") as f:
            f.write(json.dumps(dict(row, settings=settings)) + "\n")
        return row

    tasks = [(i, lam) for i in range(len(crops)) for lam in lambdas]
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        done = list(pool.map(lambda t: overfit_one(*t), tasks))
    ov_rows = [done[i * len(lambdas):(i + 1) * len(lambdas)] for i in range(len(crops))]
    for base, src, crop, npx in crops:
        rows = []
        for q in a.webp_q.split(","):
            s, d = os.path.join(tmp, "w.webp"), os.path.join(tmp, "w.ppm")
            run(["cwebp", "-quiet", "-q", q, src, "-o", s])
            run(["dwebp", "-quiet", s, "-ppm", "-o", d])
            rows.append({"image": base, "q": int(q), "bpp": 8 * os.path.getsize(s) / npx, "psnr": psnr(crop, load(d)[2])})
        webp_rows.append(rows)
        rows = []
        for q in a.amortised_q.split(","):
            s, d = os.path.join(tmp, "a.ntc"), os.path.join(tmp, "a.ppm")
            run([a.ntc, "--threads", str(a.threads), "encode", src, "-o", s, "--quality", q, "--quiet"])
            run([a.ntc, "--threads", "1", "decode", s, "-o", d])
            rows.append({"image": base, "quality": int(q), "bpp": 8 * os.path.getsize(s) / npx, "psnr": psnr(crop, load(d)[2])})
        am_rows.append(rows)
    return summarise(a, lambdas, ov_rows, webp_rows, am_rows, tmp)


def summarise(a, lambdas, ov_rows, webp_rows, am_rows, tmp):
    ov = curve("ntc overfit (%d iterations)" % a.iters, ov_rows, "images")
    wp = curve("WebP (cwebp)", webp_rows, "images")
    am = curve("ntc amortised (default model)", am_rows, "images")
    for name, c in (("overfit", ov), ("webp", wp), ("amortised", am)):
        json.dump(c, open(os.path.join(a.out, name + ".json"), "w"), indent=1)
    per = []
    for i, img in enumerate(a.images):
        one = lambda rows, nm: {"name": nm, "bpp": [r["bpp"] for r in rows[i]], "psnr_rgb": [r["psnr"] for r in rows[i]]}
        o = one(ov_rows, "o")
        per.append({"image": os.path.basename(img), "vs_webp": bd(a.ntc, one(webp_rows, "w"), o, tmp),
                    "vs_amortised": bd(a.ntc, one(am_rows, "a"), o, tmp)})
    summary = {
        "iters": a.iters, "widths": a.widths or "16,8", "upsample": a.upsample, "crop": a.crop, "lambdas": lambdas, "threads": a.threads,
        "jobs": getattr(a, "jobs", 1),
        "bd_rate_vs_webp_of_means": bd(a.ntc, wp, ov, tmp),
        "bd_rate_vs_amortised_of_means": bd(a.ntc, am, ov, tmp),
        "per_image": per,
        "mean_encode_s": sum(r["encode_s"] for rows in ov_rows for r in rows) / sum(len(r) for r in ov_rows),
        "mean_decode_s": sum(r["decode_s"] for rows in ov_rows for r in rows) / sum(len(r) for r in ov_rows),
    }
    json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    sys.exit(main())
