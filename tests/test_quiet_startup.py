"""The mmzoo program's stderr: TensorFlow's start-up chatter filtered out, real errors shown.

The lines below are what TensorFlow 2.21 printed here on a CPU-only machine for `mmzoo train`
and `mmzoo export` (see mmzoo.host.QUIET_LINES for where each comes from).
"""

import os
import subprocess
import sys
import textwrap

from mmzoo.host import LineFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = (b"I0000 00:00:1796124217.241035   15526 port.cc:153] oneDNN custom operations are on. You may see "
          b"slightly different numerical results due to floating-point round-off errors from different "
          b"computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.")
NO_DRIVER = (b"I0000 00:00:1796124217.241435   15526 cudart_stub.cc:31] Could not find cuda drivers on your "
             b"machine, GPU will not be used.")
CUINIT = (b"E0000 00:00:1796124219.496512   15526 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
          b"error: Failed call to cuInit: UNKNOWN ERROR (303)")
NODEDEF = (b"E0000 00:00:1796124222.208904   15526 node_def_util.cc:682] NodeDef mentions attribute "
           b"use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; "
           b"signature=input_dataset:variant, other_arguments: -> handle:variant; attr=f:func> This may be "
           b"expected if your graph generating binary is newer  than this binary. Unknown attributes will be "
           b"ignored. NodeDef: {{node ParallelMapDatasetV2/_16}}")
DT_BOOL = (b"E0000 00:00:1796124227.099501   15526 util.cc:131] oneDNN supports DT_BOOL only on platforms with "
           b"AVX-512. Falling back to the default Eigen-based implementation if present.")
OLD_FORMAT_DT_BOOL = (b"2025-08-01 13:52:25.403654: E tensorflow/core/util/util.cc:131] oneDNN supports DT_BOOL "
                      b"only on platforms with AVX-512. Falling back to the default Eigen-based implementation "
                      b"if present.")
#: kept: an ERROR of the same kind about another attribute, a real kernel error, a crash
OTHER_NODEDEF = NODEDEF.replace(b"use_unbounded_threadpool", b"some_new_attr")
REAL_ERROR = b"E0000 00:00:1796124230.000001   15526 op_kernel.cc:1857] OP_REQUIRES failed: file not found"
FATAL = b"F0000 00:00:1796124230.000002   15526 logging.cc:42] Check failed: x == y"
#: what the start-up lines were called by in the subprocesses below
NOISE = ("absl::InitializeLog", "port.cc:", "cudart_stub.cc:", "cuda_platform.cc:", "use_unbounded_threadpool",
         "DT_BOOL", "FeatureConnector.dtype")


def filtered(stream: bytes, chunk: int = 0) -> bytes:
    line_filter = LineFilter()
    pieces = [stream[i:i + chunk] for i in range(0, len(stream), chunk)] if chunk else [stream]
    return b"".join(line_filter.feed(p) for p in pieces) + line_filter.close()


def test_the_filter_drops_exactly_the_known_lines_and_keeps_the_rest_in_order():
    kept = [CUINIT, OTHER_NODEDEF, REAL_ERROR, b"Traceback (most recent call last):", b"ValueError: bad", FATAL]
    stream = b"\n".join([ABSL, CUINIT, ONEDNN, NO_DRIVER, ABSL, ONEDNN, OTHER_NODEDEF, NO_DRIVER, CUINIT, NODEDEF,
                         REAL_ERROR, DT_BOOL, OLD_FORMAT_DT_BOOL, kept[3], kept[4], FATAL]) + b"\n"
    expected = b"\n".join(kept) + b"\n"
    assert filtered(stream) == expected
    for chunk in (1, 7, 100):  # lines split across reads
        assert filtered(stream, chunk) == expected
    # A cuInit failure shows unless TensorFlow said first that there is no driver (a GPU machine).
    assert filtered(CUINIT + b"\n") == CUINIT + b"\n"
    # A progress bar redrawn with \r goes out at once; a last line without \n is not lost.
    line_filter = LineFilter()
    assert line_filter.feed(b"\r 50%|#####     | 1/2") == b"\r 50%|#####     | 1/2"
    assert line_filter.feed(b"E0000 00:00:1.0  1 x.cc:1] no newline") == b""
    assert line_filter.close() == b"E0000 00:00:1.0  1 x.cc:1] no newline"


def run(args, user_level=None, timeout=120):
    """``python ARGS`` from the repository, with TF_CPP_MIN_LOG_LEVEL only if the user set one."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)


# A short run through the program's start-up that provokes every kind of line: the import, a
# tf.data map with a vocabulary lookup under op determinism (as mmzoo.train runs it), a masked
# GRU trained for a step, tfds' deprecation warning; then real errors, which must show.
PROVOKE = textwrap.dedent("""
    import argparse, logging, os, sys
    from mmzoo import cli
    cli._quiet_tensorflow(argparse.Namespace(owns_stderr=True))  # what `mmzoo train` does first
    import keras, numpy as np, tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["a", "b"], [1, 2]), 0)
    ds = tf.data.Dataset.from_tensor_slices(["a", "b", "c"]).map(table.lookup, num_parallel_calls=2)
    print([int(v) for v in ds.as_numpy_iterator()])
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(10, 4, mask_zero=True),
                              keras.layers.GRU(4), keras.layers.Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.array([[1, 2, 0, 0]] * 8), np.zeros(8, "int32"), epochs=1, verbose=0)
    logging.getLogger("absl").warning("`FeatureConnector.dtype` is deprecated. Please change your code")
    logging.getLogger("absl").warning("another absl warning")
    os.write(2, b"%s\\n")
    sys.stderr.write("error: a real error\\n")
    raise ValueError("a real exception")
""" % REAL_ERROR.decode())


def test_start_up_hides_tensorflow_chatter_and_keeps_real_errors(tmp_path):
    script = tmp_path / "provoke.py"
    script.write_text(PROVOKE)
    out = run([str(script)])
    assert out.returncode == 1 and out.stderr.endswith("ValueError: a real exception\n"), out.stderr
    assert "[1, 2, 0]" in out.stdout
    for noise in NOISE:
        assert noise not in out.stderr, f"{noise!r} shown:\n{out.stderr}"
    assert REAL_ERROR.decode() in out.stderr
    assert "another absl warning" in out.stderr
    assert "error: a real error" in out.stderr
    assert "ValueError: a real exception" in out.stderr and "Traceback" in out.stderr
    # The same run with the user's own TF_CPP_MIN_LOG_LEVEL: kept, nothing filtered, the lines show.
    shown = run([str(script)], user_level="2")
    assert shown.returncode == 1, shown.stderr
    assert "use_unbounded_threadpool" in shown.stderr and REAL_ERROR.decode() in shown.stderr


def test_the_mmzoo_program_starts_quietly():
    out = run(["-m", "mmzoo.cli", "summary", "cnn_gru_concat"])
    assert out.returncode == 0, out.stderr
    assert "Total params" in out.stdout
    for noise in NOISE:
        assert noise not in out.stderr, f"{noise!r} shown:\n{out.stderr}"
    assert out.stderr.strip() == ""


def test_only_the_program_filters_and_only_when_the_user_left_the_log_level_alone():
    code = ("import argparse, sys; from mmzoo import cli, host; "
            "cli._quiet_tensorflow(argparse.Namespace(owns_stderr=sys.argv[1] == 'program')); "
            "print(host._filter_process is not None)")
    assert run(["-c", code, "program"]).stdout.strip() == "True"
    assert run(["-c", code, "program"], user_level="0").stdout.strip() == "False"
    assert run(["-c", code, "called"]).stdout.strip() == "False"  # main(argv) called from Python


def test_a_crash_still_prints_its_trace():
    code = "from mmzoo import host; import faulthandler; host.quiet_native_stderr(); faulthandler._sigsegv()"
    out = run(["-X", "faulthandler", "-c", code], timeout=60)
    assert out.returncode != 0
    assert "Fatal Python error: Segmentation fault" in out.stderr
