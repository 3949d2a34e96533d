#!/usr/bin/env python3
"""Fixtures for Whittle's .npy/.npz tests (tests/Whittle.Tests/IO).

    python3 scripts/make_npy_fixtures.py            # (re)write the numpy-made fixtures
    python3 scripts/make_npy_fixtures.py --check    # numpy reads the files Whittle's writer made

The first form writes tiny files with numpy into tests/Whittle.Tests/IO/Fixtures/. The values are
formulas the C# tests repeat (NpyTests.cs / NpzTests.cs), so keep both sides in step.

The second form loads tests/Whittle.Tests/IO/Fixtures/whittle/*, written by Whittle's writer
(regenerate them with WHITTLE_NPY_EXPORT=<that folder> dotnet test --filter WriterExport; a test
checks the committed bytes still equal what the writer produces), and asserts numpy sees the
intended dtype, shape, order and values.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "Whittle.Tests", "IO", "Fixtures")


def make():
    os.makedirs(FIXTURES, exist_ok=True)
    p = lambda name: os.path.join(FIXTURES, name)

    # float32, C order: a[i, j] = 0.5 * (4 i + j) - 1
    np.save(p("f32_c.npy"), (np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(0.5) - np.float32(1)))
    # float64, Fortran order: a[i, j] = 1.25 * (3 i + j) + 0.1
    f = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3) * 1.25 + 0.1)
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    np.save(p("f64_fortran.npy"), f)
    # int64 1-D
    np.save(p("i64_1d.npy"), np.array([-3, 0, 7, 2**40, -(2**62)], dtype=np.int64))
    # 0-d float32 scalar, and an empty (0, 3) float64 array
    np.save(p("scalar_0d.npy"), np.array(3.5, dtype=np.float32))
    np.save(p("empty_0x3.npy"), np.zeros((0, 3), dtype=np.float64))
    # big-endian: '>f8' (2, 3) with a[i, j] = 3 i + j - 2.5, and '>i4' 1-D
    np.save(p("f64_big_endian.npy"), (np.arange(6).reshape(2, 3) - 2.5).astype(">f8"))
    np.save(p("i4_big_endian.npy"), np.array([1, -2, 70000, -(2**31)], dtype=">i4"))
    # int16, 3-D, Fortran order: a[i, j, k] = 12 i + 4 j + k
    np.save(p("i16_3d_fortran.npy"), np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)))
    # float16, bool, uint8, uint16, int8
    np.save(p("f16.npy"), np.array([1.0, -2.5, 0.125, 65504.0], dtype=np.float16))
    np.save(p("bool.npy"), np.array([True, False, True], dtype=np.bool_))
    np.save(p("u1.npy"), np.array([0, 1, 255], dtype=np.uint8))
    np.save(p("u2.npy"), np.array([0, 1, 65535], dtype=np.uint16))
    np.save(p("i1.npy"), np.array([-128, 0, 127], dtype=np.int8))
    # format versions 2.0 and 3.0 (numpy writes 1.0 unless forced)
    v = np.arange(5, dtype=np.float32)
    for ver in ((2, 0), (3, 0)):
        with open(p(f"f32_v{ver[0]}.npy"), "wb") as fh:
            np.lib.format.write_array(fh, v, version=ver)
    # float32 with NaN at [1, 2]
    nan = np.zeros((2, 3), dtype=np.float32)
    nan[1, 2] = np.nan
    np.save(p("f32_nan.npy"), nan)
    # npz with two arrays, stored and deflated:
    #   w = float32 (2, 3), w[i, j] = 3 i + j + 0.25;   idx = int64 [5, -1, 9]
    w = np.arange(6, dtype=np.float32).reshape(2, 3) + np.float32(0.25)
    idx = np.array([5, -1, 9], dtype=np.int64)
    np.savez(p("two.npz"), w=w, idx=idx)
    np.savez_compressed(p("two_compressed.npz"), w=w, idx=idx)
    print("wrote fixtures to", os.path.normpath(FIXTURES))


def check():
    d = os.path.join(FIXTURES, "whittle")
    p = lambda name: os.path.join(d, name)

    def same(a, expected, dtype):
        assert a.dtype == np.dtype(dtype), (a.dtype, dtype)
        assert a.shape == expected.shape, (a.shape, expected.shape)
        assert np.array_equal(a, expected), (a, expected)

    # Matrix<float> 3 x 4, m[i, j] = 4 i + j - 5.5
    same(np.load(p("f32.npy")), np.arange(12).reshape(3, 4) - 5.5, "<f4")
    # Matrix<double> 2 x 3, m[i, j] = (3 i + j) * 0.1
    same(np.load(p("f64.npy")), np.arange(6).reshape(2, 3) * 0.1, "<f8")
    # FromInt64 shape (2, 3)
    same(np.load(p("i64.npy")), np.array([[-1, 0, 2**40], [5, 6, 7]]), "<i8")
    # FromVector<Half>, FromVector<bool>, 0-d
    same(np.load(p("f16.npy")), np.array([1.0, -2.5, 0.125]), "<f2")
    same(np.load(p("bool.npy")), np.array([True, False, True]), "|b1")
    same(np.load(p("scalar.npy")), np.array(7, dtype=np.int32), "<i4")
    # Wrap<int>([0..5], (2, 3), fortranOrder): element (i, j) is stored at j*2 + i
    fo = np.load(p("fortran.npy"))
    assert fo.flags.f_contiguous
    same(fo, np.arange(6).reshape(3, 2).T, "<i4")
    for name in ("arrays.npz", "arrays_compressed.npz"):
        with np.load(p(name)) as z:
            assert sorted(z.files) == ["idx", "w"], z.files
            same(z["w"], np.arange(12).reshape(3, 4) - 5.5, "<f4")
            same(z["idx"], np.array([3, 1, 4, 1, 5]), "<i8")
    print("numpy reads every Whittle-written file in", os.path.normpath(d), "as intended")


if __name__ == "__main__":
    check() if "--check" in sys.argv[1:] else make()
