"""The parts of Triton's ``triton_python_backend_utils`` that model.py files use, for Tessera.

A model written for Triton's Python backend imports this module as ``pb_utils`` and runs unchanged:
tensors are numpy arrays (BYTES / TYPE_STRING as object arrays of ``bytes``), requests carry their
own inputs, ``execute`` answers one ``InferenceResponse`` per request. What Triton offers beyond
that (BLS, decoupled response senders, GPU tensors and DLPack) raises ``NotImplementedError`` with
what Tessera serves instead, so that a model depending on it fails loudly, never silently.
"""

import json

import numpy as np

__all__ = [
    "InferenceRequest",
    "InferenceResponse",
    "Tensor",
    "TritonError",
    "TritonModelException",
    "get_input_config_by_name",
    "get_input_tensor_by_name",
    "get_output_config_by_name",
    "get_output_tensor_by_name",
    "numpy_to_triton_type",
    "triton_string_to_numpy",
    "triton_to_numpy_type",
]

# Triton's config names of the datatypes (config.pbtxt's data_type)
_TRITON_TO_NUMPY = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}

# Triton's numeric codes of the same types (TRITONSERVER_DataType), for triton_to_numpy_type
_CODE_TO_NUMPY = {
    1: np.bool_,
    2: np.uint8,
    3: np.uint16,
    4: np.uint32,
    5: np.uint64,
    6: np.int8,
    7: np.int16,
    8: np.int32,
    9: np.int64,
    10: np.float16,
    11: np.float32,
    12: np.float64,
    13: np.object_,
}

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1


def triton_string_to_numpy(triton_type_string):
    """``'TYPE_FP32'`` → ``numpy.float32`` (``TYPE_STRING`` → ``numpy.object_``)."""
    try:
        return _TRITON_TO_NUMPY[triton_type_string]
    except KeyError:
        raise TritonModelException(
            "unknown Triton data type {!r} (expected one of {})".format(triton_type_string, ", ".join(_TRITON_TO_NUMPY))
        ) from None


def triton_to_numpy_type(data_type):
    """Triton's numeric datatype code (``TRITONSERVER_TYPE_FP32`` = 11) → the numpy type."""
    return _CODE_TO_NUMPY.get(data_type)


def numpy_to_triton_type(data_type):
    """A numpy type → Triton's numeric datatype code (strings and bytes → 13, BYTES)."""
    dt = np.dtype(data_type)
    if dt.kind in ("O", "S", "U"):
        return 13
    for code, np_type in _CODE_TO_NUMPY.items():
        if np_type is not np.object_ and np.dtype(np_type) == dt:
            return code
    return None


def _not_supported(what, instead):
    raise NotImplementedError("{} is not supported by Tessera's Python backend; {}".format(what, instead))


class TritonError(Exception):
    """An error for one request: ``InferenceResponse(error=TritonError("..."))`` fails that request alone."""

    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7

    def __init__(self, message, code=INTERNAL):
        super().__init__(message)
        self._message = str(message)
        self._code = code

    def message(self):
        """The error's message."""
        return self._message

    def code(self):
        """One of the class's codes (``TritonError.INVALID_ARG`` answers 400, others 500)."""
        return self._code


class TritonModelException(Exception):
    """Raised by utilities on misuse; raised from ``execute`` it fails the whole batch."""

    def message(self):
        return str(self)


class Tensor:
    """A named tensor: ``Tensor("OUTPUT0", numpy_array)``; ``as_numpy()`` gives the array back."""

    def __init__(self, name, array):
        if not isinstance(name, str):
            raise TritonModelException("Tensor(name, array): name must be a str, got {}".format(type(name).__name__))
        if not isinstance(array, np.ndarray):
            raise TritonModelException(
                "Tensor({!r}, array): array must be a numpy.ndarray, got {}".format(name, type(array).__name__)
            )
        self._name = name
        self._array = array

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array

    def shape(self):
        return list(self._array.shape)

    def triton_dtype(self):
        return numpy_to_triton_type(self._array.dtype)

    def is_cpu(self):
        """Always True: tensors live in host memory (shared with the server)."""
        return True

    def to_dlpack(self):
        _not_supported("Tensor.to_dlpack (DLPack / GPU tensors)", "use as_numpy() and convert on your side")

    @staticmethod
    def from_dlpack(name, capsule):
        _not_supported("Tensor.from_dlpack (DLPack / GPU tensors)", "build the tensor from a numpy array")

    def __repr__(self):
        return "Tensor({!r}, shape={}, dtype={})".format(self._name, list(self._array.shape), self._array.dtype)


class InferenceRequest:
    """One request of a batch: its own input tensors, the outputs it asked for, its id."""

    def __init__(self, inputs=None, requested_output_names=None, request_id="", correlation_id=0,
                 model_name="", model_version=-1, parameters=None, flags=0, **_ignored):
        self._inputs = list(inputs or [])
        self._requested = list(requested_output_names or [])
        self._request_id = request_id or ""
        self._correlation_id = correlation_id
        self._model_name = model_name
        self._model_version = model_version
        self._parameters = parameters if isinstance(parameters, str) else json.dumps(parameters or {})
        self._flags = flags

    def inputs(self):
        return self._inputs

    def requested_output_names(self):
        return self._requested

    def request_id(self):
        return self._request_id

    def correlation_id(self):
        return self._correlation_id

    def parameters(self):
        """The request's parameters, as a JSON string (as Triton gives them)."""
        return self._parameters

    def flags(self):
        return self._flags

    def model_name(self):
        return self._model_name

    def is_cancelled(self):
        return False

    def get_response_sender(self):
        _not_supported("decoupled mode (get_response_sender)", "return one InferenceResponse per request from execute")

    def exec(self, *args, **kwargs):
        _not_supported("BLS (InferenceRequest.exec)", "chain models with Tessera's preprocess/postprocess steps, or call the model's HTTP endpoint")

    def async_exec(self, *args, **kwargs):
        _not_supported("BLS (InferenceRequest.async_exec)", "chain models with Tessera's preprocess/postprocess steps, or call the model's HTTP endpoint")


class InferenceResponse:
    """The answer to one request: its output tensors, or an error that fails that request alone."""

    def __init__(self, output_tensors=None, error=None, parameters=None):
        self._outputs = list(output_tensors or [])
        if error is not None and not isinstance(error, (TritonError, str)):
            error = TritonError(str(error))
        self._error = TritonError(error) if isinstance(error, str) else error
        self._parameters = parameters

    def output_tensors(self):
        return self._outputs

    def has_error(self):
        return self._error is not None

    def error(self):
        return self._error


def get_input_tensor_by_name(request, name):
    """The request's input called ``name``, or None."""
    for tensor in request.inputs():
        if tensor.name() == name:
            return tensor
    return None


def get_output_tensor_by_name(response, name):
    """The response's output called ``name``, or None."""
    for tensor in response.output_tensors():
        if tensor.name() == name:
            return tensor
    return None


def _config_entry(model_config, kind, name):
    if isinstance(model_config, str):
        model_config = json.loads(model_config)
    for entry in model_config.get(kind, []):
        if entry.get("name") == name:
            return entry
    return None


def get_input_config_by_name(model_config, name):
    """The ``input`` entry of the model config (the dict of ``json.loads(args['model_config'])``) called ``name``."""
    return _config_entry(model_config, "input", name)


def get_output_config_by_name(model_config, name):
    """The ``output`` entry of the model config called ``name`` (``name``, ``data_type``, ``dims``)."""
    return _config_entry(model_config, "output", name)
