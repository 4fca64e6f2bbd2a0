"""Read a user's SMIL/SMPL model file (chumpy pickle or our ``.npz``) into plain, checked arrays.

SMIL (``smil_web.pkl``) and SMPL ship as Python-2 pickles whose arrays are wrapped in
``chumpy`` objects and whose joint regressor is a ``scipy.sparse`` matrix. chumpy is
unmaintained and does not import on current NumPy, so we never import it: a restricted
``pickle.Unpickler`` maps every ``chumpy.*`` class (and every ``scipy.sparse`` class) to a tiny
stand-in that only records the pickled state, and we take the array out of it afterwards.
The unpickler also refuses any class outside NumPy / scipy.sparse / chumpy, so loading a file
cannot run arbitrary code.

``syrip-gen body convert smil_web.pkl --out smil.npz`` writes the arrays once to a plain
``.npz`` (loaded with ``allow_pickle=False``). The model is licensed: neither file may go
into the repository.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from syrip_gen.atomic import atomic_write_bytes
from syrip_gen.errors import UserError

NUM_JOINTS = 24
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 207
KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


class _Pickled:
    """Stand-in for a chumpy or scipy.sparse object: keeps constructor args and state only."""

    _args: tuple = ()  # copyreg._reconstructor builds with object.__new__: class defaults
    _state = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._args = args
        obj._state = None
        return obj

    def __init__(self, *args, **kwargs):  # REDUCE-style construction (cls(*args))
        pass

    def __setstate__(self, state):
        self._state = state

    def state_dict(self) -> dict:
        """The pickled attribute dict (``__dict__`` state, or the dict of a ``(dict, slots)``
        pair); {} when the object carried none."""
        s = self._state
        if isinstance(s, tuple):  # (dict_state, slot_state)
            merged = {}
            for part in s:
                if isinstance(part, dict):
                    merged.update(part)
            return merged
        return dict(s) if isinstance(s, dict) else {}


def _standin(module: str, name: str) -> type:
    return type(name, (_Pickled,), {"_origin": f"{module}.{name}"})


_ALLOWED_BUILTINS = {("builtins", n) for n in ("object", "set", "frozenset", "slice", "complex",
                                               "bytearray", "list", "dict", "tuple")}
_ALLOWED_BUILTINS |= {("copyreg", "_reconstructor"), ("_codecs", "encode")}


class _ModelUnpickler(pickle.Unpickler):
    """Resolve chumpy and scipy.sparse classes to stand-ins; allow only NumPy besides."""

    def find_class(self, module: str, name: str):
        import _compat_pickle  # Python-2 names (copy_reg, __builtin__) -> Python 3

        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        top = module.split(".")[0]
        if top == "chumpy" or module.startswith("scipy.sparse"):
            return _standin(module, name)
        if top == "numpy" or (module, name) in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load class {module}.{name}")


def _to_array(value, key: str):
    """Plain ``np.ndarray`` (or ``scipy.sparse.csr_matrix``) of a pickled value."""
    if isinstance(value, _Pickled):
        origin = type(value)._origin
        state = value.state_dict()
        if origin.startswith("scipy.sparse"):
            return _sparse_from_state(state, origin, key)
        if "x" in state:  # chumpy Ch: its value lives in the 'x' term
            return _to_array(state["x"], key)
        if value._args and not isinstance(value._args[0], (str, bytes)):
            return _to_array(value._args[0], key)
        raise UserError(f"model key {key!r} is a {origin} object without a value ('x'); "
                        "the file's layout is not SMPL's: re-download it from its licensor")
    return value


def _sparse_from_state(state: dict, origin: str, key: str):
    from scipy import sparse

    fmt = state.get("format") or origin.rsplit(".", 1)[-1][:3]
    shape = state.get("_shape", state.get("shape"))
    try:
        if fmt in ("csc", "csr"):
            cls = sparse.csc_matrix if fmt == "csc" else sparse.csr_matrix
            mat = cls((state["data"], state["indices"], state["indptr"]), shape=tuple(shape))
        elif fmt == "coo":
            mat = sparse.coo_matrix((state["data"], (state["row"], state["col"])), shape=tuple(shape))
        else:
            raise KeyError(fmt)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"model key {key!r}: cannot read its sparse matrix ({origin}); "
                        "the file's layout is not SMPL's") from None
    return mat.tocsr()


def _one_line(err: Exception) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= 160 else text[:157] + "..."


def read_pickle(path: Path) -> dict:
    """Raw dict of a chumpy-era model pickle, with every value a plain array."""
    try:
        with open(path, "rb") as f:
            data = _ModelUnpickler(f, encoding="latin1").load()
    except Exception as err:  # junk bytes make the unpickler fail in many ways (even MemoryError)
        raise UserError(f"{path} is not a readable SMIL/SMPL model pickle ({_one_line(err)}); "
                        "check the download or convert it again") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a {type(data).__name__}, not the dict of a SMIL/SMPL model")
    return {k: _to_array(v, k) for k, v in data.items() if k in KEYS}


def read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k in KEYS}
    except Exception as err:  # a damaged zip fails in many ways
        raise UserError(f"{path} is not a readable .npz model ({_one_line(err)}); "
                        "make it with `syrip-gen body convert MODEL.pkl --out MODEL.npz`") from None


def check_model(raw: dict, source: str) -> dict[str, np.ndarray]:
    """Validated float32/int64 arrays; a one-line UserError naming the first bad key.

    Returns ``v_template (V, 3)``, ``shapedirs (V, 3, S)``, ``posedirs (V, 3, 207)``,
    ``J_regressor (24, V)`` (dense), ``weights (V, 24)``, ``kintree_table (2, 24)`` int64,
    ``f (F, 3)`` int64.
    """
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise UserError(f"{source}: model key {missing[0]!r} is missing (has: "
                        f"{', '.join(sorted(raw)) or 'nothing usable'}); not a SMIL/SMPL model file")
    out = {}
    for k in KEYS:
        v = raw[k]
        if hasattr(v, "toarray"):
            v = v.toarray()
        try:
            v = np.asarray(v, dtype=np.int64 if k in ("kintree_table", "f") else np.float32)
        except (TypeError, ValueError):
            raise UserError(f"{source}: model key {k!r} is not a numeric array") from None
        out[k] = v
    V = out["v_template"].shape[0] if out["v_template"].ndim == 2 else -1
    if out["posedirs"].ndim == 2 and out["posedirs"].shape[0] == 3 * V:
        out["posedirs"] = out["posedirs"].reshape(V, 3, -1)
    want = {
        "v_template": (V, 3), "shapedirs": (V, 3, None), "posedirs": (V, 3, NUM_POSE_BASIS),
        "J_regressor": (NUM_JOINTS, V), "weights": (V, NUM_JOINTS),
        "kintree_table": (2, NUM_JOINTS), "f": (None, 3),
    }
    for k, shape in want.items():
        got = out[k].shape
        if V <= 0 or len(got) != len(shape) or any(w is not None and g != w for g, w in zip(got, shape)):
            nice = "x".join("S" if w is None and k == "shapedirs" else "F" if w is None else str(w)
                            for w in shape)
            raise UserError(f"{source}: model key {k!r} has shape {'x'.join(map(str, got))}, "
                            f"expected {nice}; not a 24-joint SMIL/SMPL model")
        if not np.all(np.isfinite(out[k])):
            raise UserError(f"{source}: model key {k!r} holds NaN or infinite values")
    if out["f"].min() < 0 or out["f"].max() >= V:
        raise UserError(f"{source}: model key 'f' indexes vertices outside 0..{V - 1}")
    parents = out["kintree_table"][0, 1:]
    if np.any(parents < 0) or np.any(parents >= np.arange(1, NUM_JOINTS)):
        raise UserError(f"{source}: model key 'kintree_table' is not a tree with parents before children")
    return out


def load_model_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Checked model arrays from a ``.pkl`` (chumpy era) or ``.npz`` file (see ``check_model``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} not found; SMIL/SMPL are licensed and not shipped: "
                        "download smil_web.pkl from its licensor and pass its path")
    with open(path, "rb") as f:
        head = f.read(4)
    raw = read_npz(path) if head.startswith(b"PK") else read_pickle(path)
    return check_model(raw, str(path))


def write_npz(arrays: dict[str, np.ndarray], out: str | Path) -> Path:
    """Write the model arrays to ``out`` atomically (:func:`syrip_gen.atomic.atomic_write_bytes`)."""
    out = Path(out)
    buf = io.BytesIO()
    np.savez(buf, **{k: arrays[k] for k in KEYS})
    atomic_write_bytes(out, buf.getvalue())
    return out


def convert(src: str | Path, out: str | Path) -> Path:
    """``.pkl`` -> checked ``.npz`` (float32 arrays, dense joint regressor)."""
    return write_npz(load_model_arrays(src), out)
