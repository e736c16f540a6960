#!/usr/bin/env python3
"""Independent numpy/scipy reference for src/metrics (MVTec AD evaluation protocol).

  python3 scripts/metrics_golden.py              regenerate test/fixtures/metrics/
  python3 scripts/metrics_golden.py --bench DIR  time pixel AUROC + AUPRO on the data that
                                                 bench/metrics.bench.ts wrote to DIR

Follows the logic of the MVTec AD evaluation scripts (generic_util.py `trapezoid`,
`compute_pro`): ground-truth regions are `scipy.ndimage.label(mask, np.ones((3, 3)))`,
false-positive candidates are all pixels outside every region of every image, all pixels
are sorted by score descending, one curve point is kept per distinct score (the last index
of each run of equal scores), (0, 0) and (1, 1) are added, and the area is integrated up to
the FPR limit with MVTec's trapezoid rule. One deliberate difference, shared with the
TypeScript code: FPR is the float64 quotient (MVTec divides float32 cumulative counts).

Fixture layout (all little-endian, images stored one after another, row-major):
  <case>.maps.f32   float32 anomaly maps      <case>.masks.u8   uint8 masks (nonzero = defect)
  expected.json     per case: sizes, limits and every expected metric
"""
import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "metrics"
EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


# --------------------------------------------------------------------------- metrics

def region_weights(masks):
    """Per-pixel PRO weight (1 / area of the pixel's 8-connected region, 0 outside)."""
    weights = np.zeros(masks.shape, dtype=np.float64)
    region_count = 0
    for i, mask in enumerate(masks):
        labelled, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
        if count == 0:
            continue
        areas = np.bincount(labelled.ravel(), minlength=count + 1)
        inverse_area = np.zeros(count + 1, dtype=np.float64)
        inverse_area[1:] = 1.0 / areas[1:]
        weights[i] = inverse_area[labelled]
        region_count += count
    return weights, region_count


def descending_groups(scores, positive, weights=None):
    """Cumulative counts at the end of each run of equal scores, scores sorted descending."""
    order = np.argsort(scores)[::-1]  # order within a tie does not matter: only run ends are kept
    sorted_scores = scores[order]
    run_end = np.empty(sorted_scores.size, dtype=bool)
    np.not_equal(sorted_scores[1:], sorted_scores[:-1], out=run_end[:-1])
    run_end[-1] = True
    thresholds = sorted_scores[run_end].astype(np.float64)
    del sorted_scores
    cum_negatives = np.cumsum(~positive[order], dtype=np.int64)[run_end]
    cum_positives = (np.flatnonzero(run_end) + 1) - cum_negatives
    cum_weights = None
    if weights is not None:
        cum_weights = np.cumsum(weights[order])[run_end]
    return thresholds, cum_negatives, cum_positives, cum_weights


def auroc_from_groups(cum_negatives, cum_positives):
    """Trapezoids between consecutive (FPR, TPR) points, in integers: 2U / (2PN)."""
    negatives = np.diff(cum_negatives, prepend=0).astype(np.float64)
    positives_sum = (cum_positives + np.concatenate(([0], cum_positives[:-1]))).astype(np.float64)
    doubled_u = float(np.sum(negatives * positives_sum))
    return doubled_u / (2.0 * float(cum_positives[-1]) * float(cum_negatives[-1]))


def auroc_mann_whitney(scores, positive):
    """AUROC as the Mann-Whitney U statistic from average ranks (ties count 1/2)."""
    ranks = stats.rankdata(scores.astype(np.float64))
    p = int(positive.sum())
    n = positive.size - p
    u = float(ranks[positive].sum()) - p * (p + 1) / 2.0
    return u / (p * n)


def f1_max_from_groups(thresholds, cum_negatives, cum_positives):
    total_positives = cum_positives[-1]
    f1 = 2.0 * cum_positives / (cum_positives + cum_negatives + total_positives)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    return {"f1": float(f1[best]), "threshold": float(thresholds[best])}


def mvtec_trapezoid(x, y, x_max):
    """MVTec's trapezoid(x, y, x_max): integrate up to x_max, interpolating only when no
    sample lies exactly at x_max."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    correction = 0.0
    if not np.any(x == x_max):
        above = int(np.searchsorted(x, x_max, side="right"))
        assert 0 < above < x.size, "integration limit outside the curve"
        x0, y0, x1, y1 = x[above - 1], y[above - 1], x[above], y[above]
        y_at_limit = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        correction = 0.5 * (y_at_limit + y0) * (x_max - x0)
    inside = x <= x_max
    xs, ys = x[inside], y[inside]
    return float(np.sum(0.5 * (ys[1:] + ys[:-1]) * (xs[1:] - xs[:-1])) + correction)


def pro_curve_from_groups(cum_negatives, cum_weights, region_count):
    fprs = cum_negatives / float(cum_negatives[-1])
    pros = np.minimum(cum_weights / region_count, 1.0)
    return np.concatenate(([0.0], fprs, [1.0])), np.concatenate(([0.0], pros, [1.0]))


def pixel_metrics(maps, masks, limits):
    """Pixel AUROC (both ways), pixel F1-max and AUPRO at each limit, from one sort."""
    weights, region_count = region_weights(masks)
    positive = (masks != 0).ravel()
    thresholds, cum_negatives, cum_positives, cum_weights = descending_groups(
        maps.ravel(), positive, weights.ravel()
    )
    fprs, pros = pro_curve_from_groups(cum_negatives, cum_weights, region_count)
    return {
        "pixel_auroc": auroc_from_groups(cum_negatives, cum_positives),
        "pixel_auroc_mann_whitney": auroc_mann_whitney(maps.ravel(), positive),
        "pixel_f1": f1_max_from_groups(thresholds, cum_negatives, cum_positives),
        "aupro": {repr(limit): mvtec_trapezoid(fprs, pros, limit) / limit for limit in limits},
        "region_count": region_count,
        "positive_pixels": int(positive.sum()),
        "pro_curve": (fprs, pros, thresholds),
        "roc_groups": (thresholds, cum_negatives, cum_positives),
    }


def image_metrics(scores, labels):
    positive = labels != 0
    thresholds, cum_negatives, cum_positives, _ = descending_groups(scores, positive)
    return {
        "image_auroc": auroc_from_groups(cum_negatives, cum_positives),
        "image_auroc_mann_whitney": auroc_mann_whitney(scores, positive),
        "image_f1": f1_max_from_groups(thresholds, cum_negatives, cum_positives),
    }


# --------------------------------------------------------------------------- datasets

def ellipse_mask(rng, height, width, max_radius):
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    ry, rx = rng.uniform(1.0, max_radius, size=2)
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def blob_dataset(rng, count, height, width, good_count, max_blobs, max_radius, defect_lift):
    masks = np.zeros((count, height, width), dtype=np.uint8)
    for i in range(good_count, count):
        for _ in range(rng.integers(1, max_blobs + 1)):
            masks[i] |= ellipse_mask(rng, height, width, max_radius)
        if not masks[i].any():
            masks[i, rng.integers(height), rng.integers(width)] = 1
    masks *= 255
    noise = rng.normal(size=(count, height, width))
    smooth = np.stack([ndimage.gaussian_filter(n, 1.5) for n in noise])
    lifted = ndimage.gaussian_filter((masks > 0).astype(np.float64), (0, 1.0, 1.0))
    maps = (smooth + defect_lift * lifted).astype(np.float32)
    order = rng.permutation(count)
    return maps[order], masks[order]


def make_cases():
    cases = []

    rng = np.random.default_rng(20240601)
    maps, masks = blob_dataset(rng, 10, 32, 40, 3, 3, 6.0, 0.6)
    cases.append({"name": "blobs", "maps": maps, "masks": masks, "limits": [0.3, 0.05]})

    # Quantised scores: a dozen levels, so ties mix defect and good pixels everywhere.
    rng = np.random.default_rng(7)
    maps, masks = blob_dataset(rng, 12, 32, 32, 4, 2, 4.0, 1.2)
    masks[1, 5:9, 5:9] = 255  # two squares touching only at a corner: one 8-connected region
    masks[1, 9:12, 9:12] = 255
    levels = np.clip(np.floor((maps - maps.min()) / np.ptp(maps) * 12), 0, 11)
    maps = (levels / 4.0 - 1.0).astype(np.float32)
    cases.append({"name": "quantised", "maps": maps, "masks": masks, "limits": [0.3, 0.05]})

    # Mostly good images, tiny regions (single pixels, diagonal chains), signed scores,
    # and both zeros (-0.0 and +0.0 must tie).
    rng = np.random.default_rng(99)
    count, height, width = 16, 24, 24
    masks = np.zeros((count, height, width), dtype=np.uint8)
    masks[3, 4, 4] = 1
    masks[3, 10, 10] = 1
    masks[7, 2:6, 2:6] = np.eye(4, dtype=np.uint8)  # diagonal chain: one region with 8-connectivity
    masks[11, 20, 0:3] = 1
    masks[11, 0, 23] = 1
    maps = rng.normal(size=(count, height, width)).astype(np.float32)
    maps[masks != 0] += np.float32(1.5)
    maps[0, :3, :3] = np.float32(-0.0)
    maps[5, :2, :] = np.float32(0.0)
    maps[3, 4, 4] = np.float32(0.0)
    maps[7, 3, 3] = np.float32(-0.0)
    cases.append({"name": "sparse", "maps": maps, "masks": masks, "limits": [0.3, 0.01]})

    # Scores over many orders of magnitude (many 16-bit key buckets) and a limit that falls
    # exactly on a curve point.
    rng = np.random.default_rng(4242)
    maps, masks = blob_dataset(rng, 8, 30, 30, 2, 2, 5.0, 0.7)
    maps = np.exp(3.0 * maps).astype(np.float32) * np.float32(1e-3)
    cases.append({"name": "wide-range", "maps": maps, "masks": masks, "limits": [0.3, 0.05, "exact"]})
    return cases


def float64_score_case():
    """Per-item float64 scores with ties (rounded to two decimals) and labels."""
    rng = np.random.default_rng(5)
    labels = (rng.random(240) < 0.4).astype(np.uint8)
    scores = np.round(rng.normal(size=240) + 0.8 * labels, 2)
    scores[:5] = [1e-300, -1e-300, 0.0, -0.0, 1e300]
    return scores, labels


# --------------------------------------------------------------------------- fixture mode

def connected_component_summary(masks):
    summary = []
    for mask in masks:
        labelled8, count8 = ndimage.label(mask, structure=EIGHT_CONNECTED)
        _, count4 = ndimage.label(mask)
        areas = np.bincount(labelled8.ravel(), minlength=count8 + 1)[1:]
        summary.append({"count8": int(count8), "count4": int(count4), "areas8": [int(a) for a in areas]})
    return summary


def write_fixtures():
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    expected = {"generator": "scripts/metrics_golden.py", "cases": []}
    for case in make_cases():
        name, maps, masks = case["name"], case["maps"], case["masks"]
        count, height, width = maps.shape
        limits = [limit for limit in case["limits"] if limit != "exact"]
        result = pixel_metrics(maps, masks, limits)
        fprs, pros, _ = result["pro_curve"]
        if "exact" in case["limits"]:
            candidates = np.flatnonzero((fprs > 0.05) & (fprs < 0.5) & (np.diff(fprs, append=2.0) > 0))
            exact = float(fprs[candidates[len(candidates) // 2]])
            limits.append(exact)
            result["aupro"][repr(exact)] = mvtec_trapezoid(fprs, pros, exact) / exact
        assert abs(result["pixel_auroc"] - result["pixel_auroc_mann_whitney"]) < 1e-12

        image_scores = maps.reshape(count, -1).max(axis=1).astype(np.float64)
        image_labels = (masks.reshape(count, -1) != 0).any(axis=1).astype(np.uint8)
        image = image_metrics(image_scores, image_labels)
        assert abs(image["image_auroc"] - image["image_auroc_mann_whitney"]) < 1e-12

        maps.astype("<f4").tofile(FIXTURE_DIR / f"{name}.maps.f32")
        masks.astype(np.uint8).tofile(FIXTURE_DIR / f"{name}.masks.u8")
        entry = {
            "name": name,
            "count": count,
            "width": width,
            "height": height,
            "pixel_auroc": result["pixel_auroc"],
            "pixel_f1": result["pixel_f1"],
            "aupro": [{"limit": limit, "value": result["aupro"][repr(limit)]} for limit in limits],
            "region_count": result["region_count"],
            "positive_pixels": result["positive_pixels"],
            "distinct_scores": int(result["pro_curve"][2].size),
            "image_scores": image_scores.tolist(),
            "image_labels": image_labels.tolist(),
            "image_auroc": image["image_auroc"],
            "image_f1": image["image_f1"],
            "components": connected_component_summary(masks),
        }
        if name == "quantised":  # few distinct scores: keep whole curves
            thresholds, cum_negatives, cum_positives = result["roc_groups"]
            entry["pro_curve"] = {"fpr": fprs.tolist(), "pro": pros.tolist(), "thresholds": thresholds.tolist()}
            entry["roc_curve"] = {
                "fpr": [0.0] + (cum_negatives / cum_negatives[-1]).tolist(),
                "tpr": [0.0] + (cum_positives / cum_positives[-1]).tolist(),
                "thresholds": thresholds.tolist(),
            }
        expected["cases"].append(entry)

    scores, labels = float64_score_case()
    image = image_metrics(scores, labels)
    assert abs(image["image_auroc"] - image["image_auroc_mann_whitney"]) < 1e-12
    expected["float64_scores"] = {
        "scores": scores.tolist(),
        "labels": labels.tolist(),
        "auroc": image["image_auroc"],
        "f1": image["image_f1"],
    }
    (FIXTURE_DIR / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    total = sum(p.stat().st_size for p in FIXTURE_DIR.iterdir())
    print(f"wrote {len(expected['cases'])} cases to {FIXTURE_DIR} ({total / 1024:.0f} KiB)")


# --------------------------------------------------------------------------- bench mode

def pixel_auroc_and_aupro(maps, masks, limit):
    """The reference computation timed by the benchmark: one argsort shared by both."""
    weights, region_count = region_weights(masks)
    positive = (masks != 0).ravel()
    _, cum_negatives, cum_positives, cum_weights = descending_groups(maps.ravel(), positive, weights.ravel())
    del weights, positive
    fprs, pros = pro_curve_from_groups(cum_negatives, cum_weights, region_count)
    return auroc_from_groups(cum_negatives, cum_positives), mvtec_trapezoid(fprs, pros, limit) / limit


def run_bench(directory):
    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text())
    shape = (meta["count"], meta["height"], meta["width"])
    maps = np.fromfile(directory / "maps.f32", dtype="<f4").reshape(shape)
    masks = np.fromfile(directory / "masks.u8", dtype=np.uint8).reshape(shape)
    started, cpu_started = time.perf_counter(), time.process_time()
    auroc, aupro = pixel_auroc_and_aupro(maps, masks, meta["limit"])
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"auroc": auroc, "aupro": aupro, "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "peak_rss_mib": peak_rss_mib}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", metavar="DIR", help="time pixel AUROC + AUPRO on DIR instead of writing fixtures")
    args = parser.parse_args()
    if args.bench:
        run_bench(args.bench)
    else:
        write_fixtures()


if __name__ == "__main__":
    main()
