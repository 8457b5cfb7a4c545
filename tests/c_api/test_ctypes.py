#!/usr/bin/env python3
"""The C ABI from Python through ctypes (standard library only): opens the fixture's sharded
model, lists it in inspect's order (by name), reads every tensor and compares its dtype, shape and
bytes with what the C++ reader read (expected.json, written by the fixture program); then checks
an error's code and message. Usage: test_ctypes.py LIBSAFETENSORS_C FIXTURE_DIR"""
import ctypes
import json
import os
import sys


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_char_p), ("rank", ctypes.c_size_t),
                ("shape", ctypes.POINTER(ctypes.c_uint64)), ("byte_size", ctypes.c_uint64)]


def main():
    library, fixture = sys.argv[1], sys.argv[2]
    lib = ctypes.CDLL(library)
    lib.safetensors_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.safetensors_close.argtypes = [ctypes.c_void_p]
    lib.safetensors_tensor_count.argtypes = [ctypes.c_void_p]
    lib.safetensors_tensor_count.restype = ctypes.c_size_t
    lib.safetensors_tensor_at.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(TensorInfo)]
    lib.safetensors_read.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64]
    lib.safetensors_last_error.restype = ctypes.c_char_p
    lib.safetensors_version.restype = ctypes.c_char_p

    with open(os.path.join(fixture, "expected.json")) as file:
        expected = json.load(file)
    model = ctypes.c_void_p()
    code = lib.safetensors_open(os.path.join(fixture, "model").encode(), ctypes.byref(model))
    assert code == 0, lib.safetensors_last_error()
    count = lib.safetensors_tensor_count(model)
    assert count == len(expected), (count, len(expected))
    names = []
    for i in range(count):
        info = TensorInfo()
        assert lib.safetensors_tensor_at(model, i, ctypes.byref(info)) == 0, lib.safetensors_last_error()
        name = info.name.decode()
        names.append(name)
        want = expected[name]
        assert info.dtype.decode() == want["dtype"], (name, info.dtype)
        assert [info.shape[d] for d in range(info.rank)] == want["shape"], name
        buffer = ctypes.create_string_buffer(max(info.byte_size, 1))
        assert lib.safetensors_read(model, info.name, buffer, info.byte_size) == 0, lib.safetensors_last_error()
        assert buffer.raw[:info.byte_size].hex() == want["hex"], name
    assert names == sorted(expected), names
    # A wrong size: InvalidTensorView (12), naming the tensor.
    buffer = ctypes.create_string_buffer(4)
    assert lib.safetensors_read(model, b"embed", buffer, 4) == 12
    assert lib.safetensors_last_error() == b'tensor "embed" has 30 bytes; dst_size is 4', lib.safetensors_last_error()
    lib.safetensors_close(model)
    print(f"test_ctypes: {count} tensors listed and read through libsafetensors_c {lib.safetensors_version().decode()}")


if __name__ == "__main__":
    main()
