"""A small Open Inference Protocol (v2, REST) server that uses only Python's standard library.

Why standard library only: a model is served in the run's OWN image digest, so that it predicts with
exactly the packages it was trained with. The runner therefore cannot install a serving framework into
that image (it would change the environment's lock and the digest). Instead this one file is
bind-mounted read-only into the container and started with the environment's own ``python3``; it
imports nothing the environment does not already have except what the model itself needs
(``joblib``/``pickle`` for scikit-learn, ``onnxruntime`` for ONNX, the student's ``score.py``).
It must keep working on any Python >= 3.8, hence no ``match`` and no ``X | Y`` annotations evaluated
at run time.

Surface (https://github.com/kserve/open-inference-protocol, REST):

* ``GET /v2/health/live``, ``GET /v2/health/ready``: 200 with ``{"live": true}``/``{"ready": true}``;
* ``GET /v2``: server metadata;
* ``GET /v2/models/{m}[/versions/{v}]``: model metadata; ``.../ready``: model readiness;
* ``POST /v2/models/{m}[/versions/{v}]/infer``: typed tensors in, typed tensors out;
* ``POST /v2/models/{m}[/versions/{v}]/predict``: a plain JSON form for people,
  ``{"rows": [[...], ...]}`` or ``{"rows": [{"feature": value, ...}, ...]}`` -> ``{"predictions": [...]}``.

Every request the client can get wrong is answered 4xx with ``{"error": "..."}`` (the protocol's error
shape); an unknown model or version is 404; an oversize body 413. Each response carries the request id
(the request's ``id`` or a generated one) in ``X-Request-Id`` so feedback can refer to it later.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import pickle
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVER_NAME = "reprolab-oip"
SERVER_VERSION = "1"
DEFAULT_MAX_BODY_BYTES = 8 << 20

# datatype -> (python check, lower bound, upper bound); bounds None for floats/bytes
_INT_RANGES = {
    "INT8": (-(1 << 7), (1 << 7) - 1), "INT16": (-(1 << 15), (1 << 15) - 1),
    "INT32": (-(1 << 31), (1 << 31) - 1), "INT64": (-(1 << 63), (1 << 63) - 1),
    "UINT8": (0, (1 << 8) - 1), "UINT16": (0, (1 << 16) - 1),
    "UINT32": (0, (1 << 32) - 1), "UINT64": (0, (1 << 64) - 1),
}
_FLOATS = ("FP16", "FP32", "FP64")
DATATYPES = tuple(_INT_RANGES) + _FLOATS + ("BOOL", "BYTES")


class BadRequest(Exception):
    """A request the client can fix; answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# -- tensors -------------------------------------------------------------------------------------------


def _flatten(data, out):  # noqa: ANN001, ANN202 - plain recursion over JSON values
    if isinstance(data, list):
        for item in data:
            _flatten(item, out)
    else:
        out.append(data)
    return out


def _check_element(value, datatype: str, where: str):  # noqa: ANN001, ANN202
    if datatype == "BOOL":
        if not isinstance(value, bool):
            raise BadRequest(f"{where}: BOOL tensors hold true/false, got {value!r}")
        return value
    if datatype == "BYTES":
        if not isinstance(value, str):
            raise BadRequest(f"{where}: BYTES tensors hold strings, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{where}: {datatype} tensors hold numbers, got {value!r}")
    if datatype in _FLOATS:
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(f"{where}: {datatype} values must be finite, got {value!r}")
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise BadRequest(f"{where}: {datatype} tensors hold integers, got {value!r}")
        value = int(value)
    low, high = _INT_RANGES[datatype]
    if not low <= value <= high:
        raise BadRequest(f"{where}: {value} is out of range for {datatype}")
    return value


def _reshape(flat: list, shape: list):
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def parse_input(tensor, index: int) -> dict:  # noqa: ANN001
    """Checks one request tensor against the protocol and returns ``{name, shape, datatype, value}``
    where ``value`` is the data reshaped to ``shape`` (nested lists, row major)."""
    where = f"inputs[{index}]"
    if not isinstance(tensor, dict):
        raise BadRequest(f"{where} must be an object with name, shape, datatype and data")
    for key in ("name", "shape", "datatype", "data"):
        if key not in tensor:
            raise BadRequest(f"{where} lacks {key!r}")
    name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name must be a non-empty string")
    where = f"input {name!r}"
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise BadRequest(f"{where}: shape must be a non-empty list of non-negative integers, got {shape!r}")
    if datatype not in DATATYPES:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}; one of {', '.join(DATATYPES)}")
    flat = _flatten(tensor["data"], [])
    expected = 1
    for dim in shape:
        expected *= dim
    if len(flat) != expected:
        raise BadRequest(f"{where}: shape {shape} needs {expected} elements, data has {len(flat)}")
    flat = [_check_element(v, datatype, where) for v in flat]
    return {"name": name, "shape": shape, "datatype": datatype, "value": _reshape(flat, shape)}


def _datatype_of(values: list) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def _plain(value):  # noqa: ANN001, ANN202
    """numpy arrays/scalars (when the environment has numpy) to plain JSON values, without importing numpy."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# numpy dtype names -> the protocol's datatypes: an ONNX graph's float32 output is FP32, not FP64
_NUMPY_TYPES = {"bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
                "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64", "float16": "FP16",
                "float32": "FP32", "float64": "FP64"}


def output_tensor(name: str, value) -> dict:  # noqa: ANN001
    declared = _NUMPY_TYPES.get(getattr(getattr(value, "dtype", None), "name", ""), "")
    value = _plain(value)
    if not isinstance(value, list):
        value = [value]
    shape, probe = [], value
    while isinstance(probe, list):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    flat = _flatten(value, [])
    datatype = declared or _datatype_of(flat)
    if datatype == "BYTES":
        flat = [v if isinstance(v, str) else str(v) for v in flat]
    elif datatype in _FLOATS:
        flat = [float(v) for v in flat]
    return {"name": name, "shape": shape, "datatype": datatype, "data": flat}


# -- models --------------------------------------------------------------------------------------------


class Model:
    """A loaded model: ``predict(inputs)`` takes the parsed tensors, returns ``{output name: value}``."""

    kind = "?"
    platform = ""

    def metadata_inputs(self) -> list:
        return []

    def predict(self, inputs: list) -> dict:
        raise NotImplementedError  # every kind below overrides it


def _rows(inputs: list) -> list:
    """One matrix of rows from the tensors: a single [N, F] tensor, or several [N]/[N, 1] columns."""
    if len(inputs) == 1:
        value = inputs[0]["value"]
        if len(inputs[0]["shape"]) == 1:
            return [value]  # one row of features
        return value
    columns = []
    for tensor in inputs:
        shape = tensor["shape"]
        if len(shape) == 2 and shape[1] == 1:
            columns.append([r[0] for r in tensor["value"]])
        elif len(shape) == 1:
            columns.append(tensor["value"])
        else:
            raise BadRequest(f"input {tensor['name']!r}: with several inputs each must be a column "
                             f"of shape [N] or [N, 1], got {shape}")
    if len({len(c) for c in columns}) != 1:
        raise BadRequest("the input columns have different lengths")
    return [list(r) for r in zip(*columns)]  # noqa: B905 - lengths checked; strict= needs 3.10


class EstimatorModel(Model):
    """A scikit-learn-style estimator (``predict``, optionally ``predict_proba``) from joblib or pickle."""

    platform = "sklearn"

    def __init__(self, path: str) -> None:
        if path.endswith(".joblib"):
            import joblib  # the environment's own joblib: it wrote the file

            self.estimator = joblib.load(path)
            self.kind = "joblib"
        else:
            with open(path, "rb") as fh:
                self.estimator = pickle.load(fh)  # noqa: S301 - the run's own output, served in its own sandbox
            self.kind = "pickle"
        if not callable(getattr(self.estimator, "predict", None)):
            raise ValueError(f"{os.path.basename(path)} holds a {type(self.estimator).__name__}, "
                             "which has no predict()")
        self.n_features = getattr(self.estimator, "n_features_in_", None)

    def metadata_inputs(self) -> list:
        width = int(self.n_features) if self.n_features is not None else -1
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, width]}]

    def predict(self, inputs: list, outputs: tuple = ("predict",)) -> dict:
        rows = _rows(inputs)
        if self.n_features is not None and any(len(r) != self.n_features for r in rows):
            raise BadRequest(f"the model expects {int(self.n_features)} features per row")
        result = {}
        for name in outputs:
            if name == "predict":
                result[name] = self.estimator.predict(rows)
            elif name == "predict_proba" and callable(getattr(self.estimator, "predict_proba", None)):
                result[name] = self.estimator.predict_proba(rows)
            else:
                raise BadRequest(f"unknown output {name!r}; this model has predict"
                                 + (", predict_proba" if hasattr(self.estimator, "predict_proba") else ""))
        return result


class OnnxModel(Model):
    """An ONNX graph through the environment's ``onnxruntime``."""

    kind = "onnx"
    platform = "onnxruntime"

    def __init__(self, path: str) -> None:
        import numpy
        import onnxruntime

        self.numpy = numpy
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

    def metadata_inputs(self) -> list:
        return [{"name": i.name, "datatype": "FP32", "shape": [d if isinstance(d, int) else -1 for d in i.shape]}
                for i in self.session.get_inputs()]

    def predict(self, inputs: list, outputs: tuple = ()) -> dict:
        feeds = {}
        names = [i.name for i in self.session.get_inputs()]
        if len(inputs) == 1 and len(names) == 1:
            feeds[names[0]] = self.numpy.asarray(_rows(inputs), dtype=self.numpy.float32)
        else:
            for tensor in inputs:
                if tensor["name"] not in names:
                    raise BadRequest(f"unknown input {tensor['name']!r}; the graph has {', '.join(names)}")
                feeds[tensor["name"]] = self.numpy.asarray(tensor["value"], dtype=self.numpy.float32)
        wanted = list(outputs) or [o.name for o in self.session.get_outputs()]
        try:
            values = self.session.run(wanted, feeds)
        except Exception as exc:  # onnxruntime reports shape/type mismatches as its own exceptions
            raise BadRequest(f"the ONNX graph refused the inputs: {exc}") from exc
        return {name: value for name, value in zip(wanted, values) if not isinstance(value, list)}  # noqa: B905 - strict= needs 3.10


class ScoreModel(Model):
    """The seed's contract: ``score.py`` with ``init()`` and ``run(inputs)``. ``run`` receives
    ``{input name: nested list}`` and returns a list (one prediction per row) or ``{output name: list}``."""

    kind = "score.py"
    platform = "score.py"

    def __init__(self, path: str) -> None:
        spec = importlib.util.spec_from_file_location("score", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "run", None)):
            raise ValueError("score.py defines no run(inputs)")
        if callable(getattr(module, "init", None)):
            module.init()
        self.module = module
        self._lock = threading.Lock()  # student code is not assumed to be thread-safe

    def predict(self, inputs: list, outputs: tuple = ()) -> dict:
        with self._lock:
            try:
                result = self.module.run({t["name"]: t["value"] for t in inputs})
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise BadRequest(f"score.py run() refused the inputs: {type(exc).__name__}: {exc}") from exc
        if isinstance(result, dict):
            return result
        return {"predict": result}


def load_model(path: str) -> Model:
    """Chooses the loader by the artifact's file name."""
    base = os.path.basename(path)
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)  # helper modules and pickled classes shipped beside the artifact
    if base.endswith(".py"):
        return ScoreModel(path)
    if base.endswith(".onnx"):
        return OnnxModel(path)
    if base.endswith((".joblib", ".pkl", ".pickle")):
        return EstimatorModel(path)
    raise ValueError(f"{base}: not a model artifact (.joblib, .pkl, .pickle, .onnx or a score.py)")


# -- HTTP ----------------------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: 50 clients connecting at once overflowed it, the kernel
    # dropped SYNs and those clients retried after 1 s (bench/serve.py at c=50: p99 1.48 s, resets). The
    # kernel caps it at net.core.somaxconn.
    request_queue_size = 1024

    def __init__(self, address, model: Model, name: str, version: str,  # noqa: ANN001
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        super().__init__(address, Handler)
        self.model, self.model_name, self.model_version = model, name, version
        self.max_body_bytes = max_body_bytes

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        # a client that hangs up mid-request (a load generator stopping, a proxy timing out) is not an error
        # of the server: socketserver would print a traceback per connection into the model's log
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses its connections
    # headers and body leave in two writes; with Nagle on, a kept-alive connection waits for the peer's
    # delayed ACK (~40 ms) before the body: measured p50 45 ms per Iris prediction before this line
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002, ANN002 - requests are logged by the gateway
        pass

    def _send(self, status: int, body: dict, request_id: str = "") -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if request_id:
            self.send_header("X-Request-Id", request_id)
        if self.close_connection:  # the client must not send another request on this connection
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _route(self):  # noqa: ANN202
        """``(action, ok)`` for the path; raises BadRequest(404) for an unknown model or version."""
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = path.split("/")[1:]
        if parts[:1] != ["v2"]:
            raise BadRequest(f"no such endpoint: {path or '/'}", 404)
        if len(parts) == 1:
            return "server", None
        if parts[1] == "health" and len(parts) == 3 and parts[2] in ("live", "ready"):
            return parts[2], None
        if parts[1] != "models" or len(parts) < 3:
            raise BadRequest(f"no such endpoint: {path}", 404)
        if parts[2] != self.server.model_name:
            raise BadRequest(f"unknown model {parts[2]!r}; this server serves {self.server.model_name!r}", 404)
        rest = parts[3:]
        if rest[:1] == ["versions"]:
            if len(rest) < 2:
                raise BadRequest(f"no such endpoint: {path}", 404)
            if rest[1] != self.server.model_version:
                raise BadRequest(f"unknown version {rest[1]!r} of model {parts[2]!r}; "
                                 f"this server serves version {self.server.model_version!r}", 404)
            rest = rest[2:]
        if not rest:
            return "metadata", None
        if len(rest) == 1 and rest[0] in ("ready", "infer", "predict"):
            return "model_" + rest[0], None
        raise BadRequest(f"no such endpoint: {path}", 404)

    def do_GET(self) -> None:  # noqa: N802
        try:
            action, _ = self._route()
            if action == "live":
                self._send(200, {"live": True})
            elif action == "ready":
                self._send(200, {"ready": True})
            elif action == "server":
                self._send(200, {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []})
            elif action == "metadata":
                model = self.server.model
                self._send(200, {"name": self.server.model_name, "versions": [self.server.model_version],
                                 "platform": model.platform, "inputs": model.metadata_inputs(), "outputs": []})
            elif action == "model_ready":
                self._send(200, {"name": self.server.model_name, "ready": True})
            else:
                raise BadRequest(f"{self.path} takes POST", 405)
        except BadRequest as exc:
            self._send(exc.status, {"error": str(exc)})

    def _body(self) -> object:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise BadRequest("the request needs a Content-Length", 411)
        size = int(length)
        if size > self.server.max_body_bytes:
            # the body is not read, so the connection cannot be reused
            self.close_connection = True
            raise BadRequest(f"the body has {size} bytes, at most {self.server.max_body_bytes} are accepted", 413)
        raw = self.rfile.read(size)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from exc

    def do_POST(self) -> None:  # noqa: N802
        request_id = ""
        # a request refused before its body is read leaves that body on the connection, where it would be read
        # as the next request's line (a 501 for the next client of a kept-alive proxy connection): close it
        keep_alive, self.close_connection = not self.close_connection, True
        try:
            action, _ = self._route()
            body = self._body()
            self.close_connection = not keep_alive
            if action == "model_infer":
                request_id = self._infer(body)
            elif action == "model_predict":
                request_id = self._predict_rows(body)
            else:
                raise BadRequest(f"{self.path} takes GET", 405)
        except BadRequest as exc:
            self._send(exc.status, {"error": str(exc)}, request_id)
        except ConnectionError:  # the client hung up while we answered: nobody to send a 500 to
            self.close_connection = True
        except Exception as exc:  # the model itself failed: the service keeps serving
            self._send(500, {"error": f"the model failed: {type(exc).__name__}: {exc}"}, request_id)

    def _infer(self, body) -> str:  # noqa: ANN001
        if not isinstance(body, dict):
            raise BadRequest("the body must be an object with 'inputs'")
        request_id = body.get("id") if isinstance(body.get("id"), str) and body.get("id") else uuid.uuid4().hex
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise BadRequest("'inputs' must be a non-empty list of tensors")
        parsed = [parse_input(t, i) for i, t in enumerate(inputs)]
        names = [p["name"] for p in parsed]
        if len(set(names)) != len(names):
            raise BadRequest("input names must be unique")
        wanted = body.get("outputs")
        outputs: tuple = ()
        if wanted is not None:
            if not isinstance(wanted, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                       for o in wanted):
                raise BadRequest("'outputs' must be a list of objects with a 'name'")
            outputs = tuple(o["name"] for o in wanted)
        result = self.server.model.predict(parsed, outputs) if outputs else self.server.model.predict(parsed)
        self._send(200, {"model_name": self.server.model_name, "model_version": self.server.model_version,
                         "id": request_id, "parameters": {},
                         "outputs": [output_tensor(name, value) for name, value in result.items()]}, request_id)
        return request_id

    def _predict_rows(self, body) -> str:  # noqa: ANN001
        rows = body.get("rows") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            raise BadRequest("the body must be {\"rows\": [[feature, ...], ...]} or {\"rows\": [{name: value}, ...]}")
        if all(isinstance(r, dict) for r in rows):
            columns = list(rows[0])
            if any(list(r) != columns for r in rows):
                raise BadRequest("every row must have the same feature names, in the same order")
            rows = [[r[c] for c in columns] for r in rows]
        if not all(isinstance(r, list) for r in rows) or len({len(r) for r in rows}) != 1:
            raise BadRequest("every row must be a list of the same length (or an object)")
        tensor = parse_input({"name": "input-0", "shape": [len(rows), len(rows[0])],
                              "datatype": "FP64" if all(not isinstance(v, str) for r in rows for v in r) else "BYTES",
                              "data": rows}, 0)
        request_id = uuid.uuid4().hex
        result = self.server.model.predict([tensor])
        predictions = _plain(next(iter(result.values())))
        self._send(200, {"model_name": self.server.model_name, "model_version": self.server.model_version,
                         "id": request_id, "predictions": predictions}, request_id)
        return request_id


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True, help="path of the model file or score.py")
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", default="1")
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - inside the container's own namespace
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    args = parser.parse_args(argv)
    started = time.monotonic()
    model = load_model(args.artifact)
    server = Server((args.host, args.port), model, args.name, args.version, args.max_body_bytes)
    print(json.dumps({"event": "serving", "model": args.name, "version": args.version, "kind": model.kind,
                      "port": server.server_address[1], "load_seconds": round(time.monotonic() - started, 3)}),
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
