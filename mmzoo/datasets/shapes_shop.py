"""`shapes_shop`: a synthetic shop for recommenders: users with hidden tastes buy items that have
a picture, a text and attributes. Plain numpy and files, no TensorFlow.

Items: one coloured shape on black (the `shapes_vqa` drawing), a description ("a small red
circle, 12 euros") and two numbers (price, size). Users: a hidden favourite colour and shape and
a budget; the users table shows the budget (noisy) and an unrelated number. Interactions, in time
order: 65% of a user's purchases are items of both favourites near the budget, 15% of one
favourite, 20% popular items whatever the taste (a Zipf popularity). So the most popular items
are a weak answer (small config, test: recall@10 0.09), and what a user buys next is told by
their history (the colour and shape they keep buying) and the items' attributes: a ranking that
knows the hidden tastes (`taste_oracle`) reaches recall@10 0.26. That gap is what a two-tower
recommender has to learn.

Written as ``interactions.csv``, ``users.csv``, ``items.csv`` and ``images/`` (the files
`mmzoo.data.interactions.read_interactions` reads), deterministically from seeded numpy.

Example:
>>> paths = write_dataset("/tmp/shop")                       # doctest: +SKIP
>>> data = mmzoo.data.interactions.read_interactions(**paths)
>>> data.popularity_baseline()["recall@10"]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, Optional

import numpy as np

from mmzoo.datasets import shapes_vqa_generate as scenes
from mmzoo.datasets.shapes_captions import default_data_dir, png_bytes

VERSION = "1.0.0"
CONFIGS = {"small": {"items": 240, "users": 300, "events": (8, 16)},
           "full": {"items": 1000, "users": 2000, "events": (10, 30)}}
SIZES = ("small", "medium", "large")  # an item's size attribute
SHARES = {"both": 0.65, "one": 0.15, "popular": 0.2}


def make_items(n: int, rng: np.random.Generator) -> list:
    items = []
    for i in range(n):
        obj = int(rng.integers(scenes.NUM_PAIRS))
        image, _ = scenes.draw_image(rng, [obj])
        colour, shape = scenes.object_name(obj).split()
        size = int(rng.integers(3))
        price = float(np.round(np.exp(rng.uniform(np.log(5), np.log(80))), 2))
        items.append({"item": f"item{i:04d}", "colour": colour, "shape": shape, "size": size, "price": price,
                      "image": image,
                      "text": f"a {SIZES[size]} {colour} {shape}, {price:.0f} euros"})
    return items


def make_users(n: int, rng: np.random.Generator) -> list:
    return [{"user": f"user{u:04d}", "colour": scenes.COLOURS[int(rng.integers(4))],
             "shape": scenes.SHAPES[int(rng.integers(3))], "budget": float(np.exp(rng.uniform(np.log(8), np.log(60))))}
            for u in range(n)]


def make_events(users: list, items: list, per_user: tuple, rng: np.random.Generator) -> list:
    popularity = 1.0 / np.arange(1, len(items) + 1) ** 1.1
    popularity = popularity[rng.permutation(len(items))]
    popularity /= popularity.sum()
    price = np.array([it["price"] for it in items])
    events, clock = [], 0.0
    for user in users:
        both = np.array([it["colour"] == user["colour"] and it["shape"] == user["shape"] for it in items])
        one = np.array([(it["colour"] == user["colour"]) != (it["shape"] == user["shape"]) for it in items])
        fit = np.exp(-np.abs(np.log(price / user["budget"])) * 3.0)
        for _ in range(int(rng.integers(per_user[0], per_user[1] + 1))):
            kind = rng.choice(list(SHARES), p=list(SHARES.values()))
            weights = popularity if kind == "popular" else (both if kind == "both" else one) * fit
            if weights.sum() == 0:
                weights = popularity
            clock += float(rng.exponential(60.0))
            events.append({"user": user["user"], "item": items[int(rng.choice(len(items), p=weights / weights.sum()))][
                "item"], "timestamp": round(clock, 1)})
    return events


def write_dataset(config: str = "small", data_dir: Optional[str] = None, seed: int = 0) -> Dict[str, str]:
    """Write a config's files once (a temp folder renamed into place); returns the paths as
    `read_interactions` keyword arguments."""
    if config not in CONFIGS:
        raise ValueError(f"Unknown shapes_shop config {config!r}. Expected one of {sorted(CONFIGS)}.")
    folder = os.path.join(data_dir or default_data_dir(), "shapes_shop", config, VERSION)
    paths = {"interactions": os.path.join(folder, "interactions.csv"), "users": os.path.join(folder, "users.csv"),
             "items": os.path.join(folder, "items.csv")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    settings = CONFIGS[config]
    rng = np.random.default_rng([seed, 1234])
    items = make_items(settings["items"], rng)
    users = make_users(settings["users"], rng)
    events = make_events(users, items, settings["events"], rng)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        os.makedirs(os.path.join(staging, "images"))
        from mmzoo.data.interactions import write_table

        item_rows = []
        for it in items:
            name = f"images/{it['item']}.png"
            with open(os.path.join(staging, name), "wb") as f:
                f.write(png_bytes(it["image"]))
            item_rows.append({"item": it["item"], "image": name, "text": it["text"],
                              "tabular": f"{np.log(it['price']):.4f} {it['size']}"})
        write_table(os.path.join(staging, "items.csv"), item_rows)
        noise = np.random.default_rng([seed, 99])
        write_table(os.path.join(staging, "users.csv"), [
            {"user": u["user"], "profile": f"{np.log(u['budget']) + noise.normal(0, 0.2):.4f} {noise.normal():.4f}"}
            for u in users])
        write_table(os.path.join(staging, "interactions.csv"), events)
        if os.path.exists(folder):
            shutil.rmtree(staging)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return paths


def taste_oracle(config: str = "small", seed: int = 0, split: str = "test") -> dict:
    """Recall@10/50 and NDCG@10 of a recommender that knows each user's hidden taste (items of both
    favourites near the budget first): the ceiling a model can approach, from the generator."""
    from mmzoo.data.interactions import ranking_metrics

    settings = CONFIGS[config]
    rng = np.random.default_rng([seed, 1234])
    items = make_items(settings["items"], rng)
    users = {u["user"]: u for u in make_users(settings["users"], rng)}
    events = make_events(list(users.values()), items, settings["events"], rng)
    per_user: Dict[str, list] = {}
    for e in events:
        per_user.setdefault(e["user"], []).append(e["item"])
    price = np.array([it["price"] for it in items])
    rankings, relevant = [], []
    for name, bought in per_user.items():
        if len(bought) < 3:
            continue
        u = users[name]
        score = np.array([2.0 * (it["colour"] == u["colour"] and it["shape"] == u["shape"])
                          + 1.0 * ((it["colour"] == u["colour"]) != (it["shape"] == u["shape"])) for it in items])
        score = score + np.exp(-np.abs(np.log(price / u["budget"])) * 3.0)
        last = len(bought) - (1 if split == "test" else 2)  # the held-out interaction
        seen = set(bought[:last])
        order = [items[i]["item"] for i in np.argsort(-score, kind="stable") if items[i]["item"] not in seen]
        rankings.append(order[:50])
        relevant.append({bought[last]})
    return ranking_metrics(rankings, relevant)
