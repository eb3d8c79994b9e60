"""Request and response bodies of the mlprt Ray Serve deployment (no Ray needed here).

Two body kinds, chosen by the request's Content-Type:

* JSON (``application/json``): ``{"inputs": {"input": [[...], ...]}}``. A value with one
  dimension less than the engine's input is one row (the answer then has no batch dimension
  either). Numbers are converted to the input's dtype; ``NaN`` / ``Infinity`` (Python's JSON
  spelling) are data and pass through. Answer: ``{"outputs": {"output": [...]}}``.
* ``.npy`` (``application/x-npy`` or ``application/octet-stream``): the array of the engine's
  only input (``?input=NAME`` picks one of several); the dtype is the array's own. Answer: the
  ``.npy`` of the only output (``?output=NAME`` picks one).

``Accept: application/json`` or ``application/x-npy`` asks for the other answer kind.
A body that cannot be decoded raises :class:`RequestError` with the HTTP status and a message
that says what was wrong and what is allowed.
"""

from __future__ import annotations

import io
import json

import numpy as np

JSON = "application/json"
NPY = "application/x-npy"
_NPY_TYPES = (NPY, "application/octet-stream", "application/npy")


class RequestError(Exception):
    """A request the deployment refuses: ``status`` is the HTTP status (4xx), ``code`` a short
    name, ``str(e)`` the message for the client."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


def media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def decode(body: bytes, content_type: str | None, query: dict, inputs: dict):
    """The feed {name: ndarray} of a request and whether it was one row without a batch dim.

    ``inputs`` maps each input name to (numpy dtype, shape as built, -1 for dynamic dims)."""
    kind = media_type(content_type)
    if kind in ("", JSON):
        return _decode_json(body, inputs)
    if kind in _NPY_TYPES:
        return _decode_npy(body, query, inputs)
    raise RequestError(415, "unsupported_media_type",
                       f"Content-Type '{kind}' is not supported: send {JSON} "
                       f"({{\"inputs\": {{name: rows}}}}) or {NPY} (an .npy file)")


def _decode_json(body: bytes, inputs: dict):
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError(400, "malformed_json", f"malformed JSON body: {e}") from None
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), dict):
        raise RequestError(400, "bad_request",
                           "the JSON body must be an object {\"inputs\": {name: rows}}; the "
                           f"engine's inputs: {', '.join(inputs)}")
    feed, single = {}, None
    for name, value in document["inputs"].items():
        dtype, shape = inputs.get(name, (np.float32, None))
        try:
            array = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise RequestError(400, "bad_value",
                               f"input '{name}': cannot read the JSON value as a {np.dtype(dtype)}"
                               f" array ({e}); send numbers in nested lists of one shape") from None
        if shape is not None and array.ndim == len(shape) - 1:
            array = array[np.newaxis]
            single = True if single is None else single
        else:
            single = False
        feed[name] = array
    return feed, bool(single)


def _only_name(query: dict, kind: str, names, holder: str, alternative: str) -> str:
    """The ?input= / ?output= name of the query, or the engine's only one of that kind."""
    name = query.get(kind)
    if name is None:
        if len(names) != 1:
            raise RequestError(400, "bad_request",
                               f"{holder} holds one {kind} and the engine has {len(names)} "
                               f"({', '.join(names)}): name it with ?{kind}=NAME{alternative}")
        name = next(iter(names))
    return name


def _decode_npy(body: bytes, query: dict, inputs: dict):
    name = _only_name(query, "input", inputs, "an .npy body", ", or send JSON")
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise RequestError(400, "malformed_npy", f"the body is not a readable .npy file: {e}") \
            from None
    if not isinstance(array, np.ndarray):
        raise RequestError(400, "malformed_npy", "the body is an .npz archive; send one .npy")
    shape = inputs.get(name, (None, None))[1]
    single = shape is not None and array.ndim == len(shape) - 1
    return {name: array[np.newaxis] if single else array}, single


def wants_npy(content_type: str | None, accept: str | None) -> bool:
    """The answer's kind: the request's own unless Accept names the other one."""
    accepted = media_type(accept)
    if accepted == JSON:
        return False
    if accepted in _NPY_TYPES:
        return True
    return media_type(content_type) in _NPY_TYPES


def encode(outputs: dict, single: bool, npy: bool, query: dict):
    """(body bytes, media type) of an answer."""
    if single:
        outputs = {k: v[0] for k, v in outputs.items()}
    if not npy:
        return json.dumps({"outputs": {k: _json_ready(v) for k, v in outputs.items()}}).encode(), \
            JSON
    name = _only_name(query, "output", outputs, "an .npy answer", "")
    if name not in outputs:
        raise RequestError(400, "unknown_output",
                           f"?output={name}: no such output; the engine's outputs: "
                           f"{', '.join(outputs)}")
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(outputs[name]), allow_pickle=False)
    return buffer.getvalue(), NPY


def _json_ready(array):
    # tolist() keeps NaN/inf as floats; json.dumps writes them as NaN / Infinity.
    return np.asarray(array).tolist()


def error_body(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": message, "code": code, "status": status}).encode()

