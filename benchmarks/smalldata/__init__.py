"""A small-data benchmark built from material mmzoo did not generate (see bench_small_data.py).

* `speech`: spoken digits 0-9 in English and Mandarin, synthesized once by espeak-ng into
  ``benchmarks/data/speech_digits.npz`` (``python -m benchmarks.smalldata.speech --write``);
* `tasks`: the tasks' builders (manifest + media files, deterministic from a seed) over those
  clips, scikit-learn's bundled handwritten digits and glyphs in matplotlib's DejaVu fonts;
* `baseline`: a hand-written Keras model that reads the same manifests.
"""
