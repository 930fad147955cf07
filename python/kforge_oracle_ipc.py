"""kforge_oracle_ipc: CUDA IPC export of the oracle's tensors (the device data path).

For a cuda session the harness's worker reads a trial's inputs, params and reference outputs
straight from the oracle's GPU memory: each tensor is made contiguous, kept alive here until
the harness releases it, and described by the IPC memory handle of the driver allocation that
holds it plus the byte offset of the tensor in that allocation. The worker maps the handle
with cuIpcOpenMemHandle and copies device-to-device.

The handle comes from the CUDA driver itself (ctypes on libcuda, which torch has loaded):
cuMemGetAddressRange gives the base of the caching allocator's segment that holds the tensor,
cuIpcGetMemHandle the handle of that segment. torch's own storage._share_cuda_() is not used:
it swaps the storage's deleter for a reference-counted one that keeps the block alive until
a consumer decrements a shared counter (which kforge's C worker never does), so every
exported trial would stay allocated. Here the oracle holds plain references, and dropping
them (the `release` verb) gives the memory back to torch's cache.

Segments that cannot be exported (torch's expandable segments, cuMemCreate memory) raise
IpcUnavailable with the driver's error; the harness then uses the host path (case files)."""

import ctypes

import torch

from kforge_oracle_st import short_dtype

_HANDLE_BYTES = 64


class IpcUnavailable(Exception):
    """This process cannot export its CUDA memory through IPC handles."""


class _Driver:
    def __init__(self):
        try:
            lib = ctypes.CDLL("libcuda.so.1")
        except OSError as e:
            raise IpcUnavailable("cannot load libcuda.so.1: %s" % e)
        try:
            self.range = lib.cuMemGetAddressRange_v2
            self.get_handle = lib.cuIpcGetMemHandle
            self.err_name = lib.cuGetErrorName
        except AttributeError as e:
            raise IpcUnavailable("the CUDA driver lacks %s" % e)
        self.range.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_size_t),
                               ctypes.c_uint64]
        self.range.restype = ctypes.c_int
        self.get_handle.argtypes = [ctypes.c_char_p, ctypes.c_uint64]
        self.get_handle.restype = ctypes.c_int
        self.err_name.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        self.err_name.restype = ctypes.c_int

    def _why(self, r):
        name = ctypes.c_char_p()
        if self.err_name(r, ctypes.byref(name)) == 0 and name.value:
            return name.value.decode()
        return "CUDA error %d" % r

    def export(self, ptr):
        """(handle bytes, offset of ptr in its allocation) for a device pointer."""
        base = ctypes.c_uint64(0)
        size = ctypes.c_size_t(0)
        r = self.range(ctypes.byref(base), ctypes.byref(size), ctypes.c_uint64(ptr))
        if r:
            raise IpcUnavailable("cuMemGetAddressRange: %s" % self._why(r))
        buf = ctypes.create_string_buffer(_HANDLE_BYTES)
        r = self.get_handle(buf, base)
        if r:
            raise IpcUnavailable("cuIpcGetMemHandle: %s (torch's expandable segments cannot be "
                                 "exported)" % self._why(r))
        return buf.raw, ptr - base.value


class IpcStore:
    """Exported tensor groups (a trial's case, the params), kept alive until released."""

    def __init__(self):
        self.driver = None
        self.groups = {}
        self.next_id = 1

    def _drv(self):
        if self.driver is None:
            self.driver = _Driver()
        return self.driver

    def export(self, named, device_index=None):
        """named: [(name, tensor)] -> (group id, [descriptor]). Tensors are copied to the CUDA
        device if needed, made contiguous and kept until release(id)."""
        drv = self._drv()
        keep, descs = [], []
        for name, t in named:
            t = t.detach()
            if t.device.type != "cuda":
                t = t.to("cuda" if device_index is None else "cuda:%d" % device_index)
            t = t.contiguous()
            nbytes = t.numel() * t.element_size()
            if nbytes == 0:
                handle, off = bytes(_HANDLE_BYTES), 0
            else:
                handle, off = drv.export(t.data_ptr())
            keep.append(t)
            descs.append({"name": name, "dtype": short_dtype(t.dtype), "shape": list(t.shape),
                          "nbytes": nbytes, "handle": handle.hex(), "offset": off})
        torch.cuda.synchronize()  # the worker reads on its own context: all writes done first
        gid = self.next_id
        self.next_id += 1
        self.groups[gid] = keep
        return gid, descs

    def release(self, ids):
        n = 0
        for i in ids:
            if self.groups.pop(int(i), None) is not None:
                n += 1
        return n

    def clear(self):
        self.groups.clear()
