"""One instance of a Triton-style model.py, driven by Tessera's Python backend.

Control messages are framed JSON (uint32-LE length, then UTF-8 JSON) on stdin (from the server)
and on the process's original stdout (to the server); fd 1 is then pointed at stderr so that
``print`` in model.py lands in the server's log instead of corrupting the channel. Tensor data
never travels as JSON: it lives in a shared-memory file the server names, mapped here with mmap.
Inputs are numpy views of that mapping (no copy); outputs are written into it after the inputs.
"""

import importlib.util
import json
import mmap
import os
import struct
import sys
import traceback

import numpy as np

import triton_python_backend_utils as pb_utils

_NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_DATATYPE = {np.dtype(t).str: name for name, t in _NUMPY.items()}
_ALIGN = 64


class Channel:
    def __init__(self):
        # keep the real stdout for the channel; model.py's prints go to stderr from here on
        self._out = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def read(self):
        head = self._read_exact(4)
        if head is None:
            return None
        (length,) = struct.unpack("<I", head)
        body = self._read_exact(length)
        return None if body is None else json.loads(body)

    def write(self, message):
        body = json.dumps(message).encode("utf-8")
        data = struct.pack("<I", len(body)) + body
        view = memoryview(data)
        while view:
            written = os.write(self._out, view)
            view = view[written:]

    @staticmethod
    def _read_exact(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(0, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)


class SharedMemory:
    """The server's shared-memory file, mapped; remapped (never unmapped) when it grows, as arrays may still view the old map."""

    def __init__(self, path):
        self._fd = os.open(path, os.O_RDWR)
        self.size = 0
        self.map = None

    def ensure(self, size):
        if size <= self.size:
            return
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self.map = mmap.mmap(self._fd, size)
        self.size = size

    def grow_to(self, needed):
        if needed > self.size:
            self.ensure(max(needed, self.size * 2))


def read_tensor(shm, desc):
    datatype, shape, offset, nbytes = desc["datatype"], desc["shape"], desc["offset"], desc["nbytes"]
    if datatype == "BYTES":
        raw = shm.map[offset:offset + nbytes]
        items, pos = [], 0
        while pos < nbytes:
            (length,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            items.append(bytes(raw[pos:pos + length]))
            pos += length
        array = np.empty(len(items), dtype=np.object_)
        array[:] = items
        return array.reshape(shape)
    dtype = _NUMPY[datatype]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count == 0:
        return np.empty(shape, dtype=dtype)
    return np.frombuffer(shm.map, dtype=dtype, count=count, offset=offset).reshape(shape)


def _bytes_of(item):
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return str(item).encode("utf-8")


def encode_output(tensor):
    """(name, datatype, shape, bytes-like) of an output tensor, or raises ValueError saying why not."""
    if not isinstance(tensor, pb_utils.Tensor):
        raise ValueError("output_tensors must hold pb_utils.Tensor objects, got {}".format(type(tensor).__name__))
    array = tensor.as_numpy()
    shape = list(array.shape)
    if array.dtype.kind in ("O", "S", "U"):
        parts = []
        for item in array.reshape(-1):
            data = _bytes_of(item)
            parts.append(struct.pack("<I", len(data)))
            parts.append(data)
        return tensor.name(), "BYTES", shape, b"".join(parts)
    contiguous = np.ascontiguousarray(array)
    if not contiguous.dtype.isnative:
        contiguous = contiguous.astype(contiguous.dtype.newbyteorder("="))
    datatype = _DATATYPE.get(contiguous.dtype.str)
    if datatype is None:
        raise ValueError("output {!r} has numpy dtype {}, which has no Triton datatype".format(tensor.name(), array.dtype))
    return tensor.name(), datatype, shape, memoryview(contiguous.reshape(-1)).cast("B")


def describe(exc):
    """The last line of the traceback, and where in the model's code it was raised."""
    if isinstance(exc, SyntaxError):
        return "SyntaxError: {} ({}, line {})".format(exc.msg, os.path.basename(exc.filename or "?"), exc.lineno)
    last = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        frame = frames[-1]
        return "{} (at {}:{}, in {})".format(last, os.path.basename(frame.filename), frame.lineno, frame.name)
    return last


def log_traceback(what):
    sys.stderr.write("tessera python worker: {}:\n{}".format(what, traceback.format_exc()))
    sys.stderr.flush()


class Worker:
    def __init__(self, channel):
        self.channel = channel
        self.model = None
        self.shm = None

    def init(self, message):
        model_file = message["model_file"]
        self.shm = SharedMemory(message["shm"])
        self.shm.ensure(message["shm_size"])
        sys.path.insert(0, os.path.dirname(model_file))
        try:
            spec = importlib.util.spec_from_file_location("model", model_file)
            module = importlib.util.module_from_spec(spec)
            sys.modules["model"] = module
            spec.loader.exec_module(module)
            cls = getattr(module, "TritonPythonModel", None)
            if cls is None:
                raise AttributeError("{} defines no class TritonPythonModel".format(os.path.basename(model_file)))
            self.model = cls()
            if hasattr(self.model, "initialize"):
                self.model.initialize(message["args"])
        except BaseException as exc:  # noqa: BLE001 - the server reports any failure of the load
            log_traceback("loading {} failed".format(model_file))
            self.channel.write({"op": "error", "message": describe(exc), "traceback": traceback.format_exc()})
            return False
        self.channel.write({
            "op": "ready",
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "finalize": hasattr(self.model, "finalize"),
        })
        return True

    def execute(self, message):
        self.shm.ensure(message["shm_size"])
        requests = []
        for r in message["requests"]:
            inputs = [pb_utils.Tensor(d["name"], read_tensor(self.shm, d)) for d in r["inputs"]]
            requests.append(pb_utils.InferenceRequest(
                inputs=inputs,
                requested_output_names=r.get("outputs", []),
                request_id=r.get("id", ""),
                parameters=r.get("parameters", {}),
                model_name=message.get("model", ""),
            ))
        try:
            responses = self.model.execute(requests)
        except BaseException as exc:  # noqa: BLE001 - a failing execute fails its batch, the worker serves on
            if isinstance(exc, SystemExit):
                raise
            log_traceback("execute raised")
            self.channel.write({"op": "result", "id": message["id"], "error": describe(exc)})
            return
        self.channel.write({"op": "result", "id": message["id"], **self._encode(responses, len(requests), message["out_offset"])})

    def _encode(self, responses, count, offset):
        if responses is None:
            return {"error": "execute returned None; it must return a list of pb_utils.InferenceResponse, one per request"}
        responses = list(responses)
        if len(responses) != count:
            return {"error": "execute returned {} responses for {} requests; return one pb_utils.InferenceResponse per request, in order".format(len(responses), count)}
        results, pending = [], []
        for response in responses:
            if not isinstance(response, pb_utils.InferenceResponse):
                results.append({"error": "execute returned a {} where a pb_utils.InferenceResponse was expected".format(type(response).__name__), "status": 500})
                continue
            if response.has_error():
                err = response.error()
                status = 400 if err.code() == pb_utils.TritonError.INVALID_ARG else 500
                results.append({"error": err.message(), "status": status})
                continue
            try:
                encoded = [encode_output(t) for t in response.output_tensors()]
            except ValueError as exc:
                results.append({"error": str(exc), "status": 500})
                continue
            outputs = []
            for name, datatype, shape, data in encoded:
                offset = (offset + _ALIGN - 1) // _ALIGN * _ALIGN
                outputs.append({"name": name, "datatype": datatype, "shape": shape, "offset": offset, "nbytes": len(data)})
                pending.append((offset, data))
                offset += len(data)
            results.append({"outputs": outputs})
        self.shm.grow_to(offset)
        for at, data in pending:
            self.shm.map[at:at + len(data)] = data
        return {"results": results, "shm_size": self.shm.size}

    def finalize(self):
        error = None
        if self.model is not None and hasattr(self.model, "finalize"):
            try:
                self.model.finalize()
            except BaseException as exc:  # noqa: BLE001 - reported, the worker exits anyway
                log_traceback("finalize raised")
                error = describe(exc)
        self.channel.write({"op": "finalized", **({"error": error} if error else {})})


def main():
    channel = Channel()
    worker = Worker(channel)
    first = channel.read()
    if first is None or first.get("op") != "init" or not worker.init(first):
        sys.exit(1)
    while True:
        message = channel.read()
        if message is None:
            # the server went away (its end of stdin closed): nothing is left to answer
            os._exit(0)
        op = message.get("op")
        if op == "execute":
            worker.execute(message)
        elif op == "ping":
            channel.write({"op": "pong"})
        elif op == "finalize":
            worker.finalize()
            sys.stderr.flush()
            os._exit(0)
        else:
            channel.write({"op": "error", "message": "unknown op {!r}".format(op)})


if __name__ == "__main__":
    main()
