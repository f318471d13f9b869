"""ntc — shallow-decoder neural image compression, from Python (ctypes over libntc's C API).

    import numpy as np, ntc
    data = ntc.encode(image)            # image: uint8 array, H x W x 3; quality=50 or lam=...
    back = ntc.decode(data)             # uint8 array, H x W x 3
    ntc.psnr(image, back), ntc.ms_ssim(image, back)

The library is found through $NTC_LIBRARY, then the build directory of this checkout
(../build/libntc.so), then the system (libntc.so.0). Models: ntc.Model(path) or the default model
(the two-layer family, found through $NTC_MODEL_DIR or the installed share/ntc/models).
Errors raise ntc.Error with the library's one-line message.
"""
import ctypes
import ctypes.util
import os
import threading

import numpy as np

__all__ = ["Error", "Model", "encode", "decode", "psnr", "ms_ssim", "set_threads", "set_limits", "version"]


class Error(RuntimeError):
    """A failed ntc call: .status is the C API's ntc_status, str() its message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _load_library():
    candidates = []
    if os.environ.get("NTC_LIBRARY"):
        candidates.append(os.environ["NTC_LIBRARY"])
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.join(here, "..", "..", "build", "libntc.so"))
    candidates.append("libntc.so.0")
    found = ctypes.util.find_library("ntc")
    if found:
        candidates.append(found)
    errors = []
    for c in candidates:
        if os.sep in c and not os.path.exists(c):
            continue
        try:
            return ctypes.CDLL(c)
        except OSError as e:
            errors.append(f"{c}: {e}")
    raise ImportError("ntc: cannot load libntc (set NTC_LIBRARY): " + "; ".join(errors or candidates))


_lib = _load_library()
_u8p = ctypes.POINTER(ctypes.c_uint8)
_lib.ntc_api_version.restype = ctypes.c_int
_lib.ntc_version.restype = ctypes.c_char_p
_lib.ntc_last_error.restype = ctypes.c_char_p
_lib.ntc_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
_lib.ntc_model_load_memory.argtypes = [_u8p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
_lib.ntc_model_free.argtypes = [ctypes.c_void_p]
_lib.ntc_encode.argtypes = [ctypes.c_void_p, _u8p, ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_double,
                            ctypes.c_double, ctypes.POINTER(_u8p), ctypes.POINTER(ctypes.c_size_t)]
_lib.ntc_decode.argtypes = [ctypes.c_void_p, _u8p, ctypes.c_size_t, ctypes.POINTER(_u8p),
                            ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
_lib.ntc_free.argtypes = [ctypes.c_void_p]
_lib.ntc_set_threads.argtypes = [ctypes.c_int]
_lib.ntc_set_limits.argtypes = [ctypes.c_int64, ctypes.c_int64]

if _lib.ntc_api_version() != 1:
    raise ImportError(f"ntc: libntc has C API version {_lib.ntc_api_version()}, this module speaks 1")


def _check(status):
    if status != 0:
        raise Error(status, _lib.ntc_last_error().decode("utf-8", "replace"))


def version():
    return _lib.ntc_version().decode()


def set_threads(n):
    """Threads for every call (<= 0: all cores)."""
    _lib.ntc_set_threads(int(n))


def set_limits(max_pixels=100_000_000, max_memory_mib=8192):
    """Decoder limits: streams over max_pixels are refused; tensors of one call stay within max_memory_mib (0: none)."""
    _lib.ntc_set_limits(int(max_pixels), int(max_memory_mib))


class Model:
    """A loaded model (a file path, bytes, or None for the default model)."""

    def __init__(self, source=None):
        handle = ctypes.c_void_p()
        if isinstance(source, (bytes, bytearray)):
            buf = (ctypes.c_uint8 * len(source)).from_buffer_copy(source)
            _check(_lib.ntc_model_load_memory(buf, len(source), ctypes.byref(handle)))
        else:
            path = None if source is None else os.fsencode(source)
            _check(_lib.ntc_model_load(path, ctypes.byref(handle)))
        self._handle = handle

    def __del__(self):
        if getattr(self, "_handle", None):
            _lib.ntc_model_free(self._handle)
            self._handle = None

    def encode(self, image, quality=50, lam=0.0):
        """uint8 H x W x 3 array -> bytes of an .ntc stream. lam > 0 picks an exact λ instead of quality.
        For a fixed-rate model pass quality=None."""
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError("ntc.encode wants a uint8 array of shape (H, W, 3)")
        a = np.ascontiguousarray(a)
        h, w = a.shape[:2]
        out, size = _u8p(), ctypes.c_size_t()
        q = -1.0 if quality is None else float(quality)
        _check(_lib.ntc_encode(self._handle, a.ctypes.data_as(_u8p), w, h, w * 3, q, float(lam), ctypes.byref(out),
                               ctypes.byref(size)))
        try:
            return ctypes.string_at(out, size.value)
        finally:
            _lib.ntc_free(out)

    def decode(self, data):
        """bytes of an .ntc stream -> uint8 array of shape (H, W, 3)."""
        data = bytes(data)
        buf = (ctypes.c_uint8 * max(len(data), 1)).from_buffer_copy(data or b"\0")
        out, w, h = _u8p(), ctypes.c_int(), ctypes.c_int()
        _check(_lib.ntc_decode(self._handle, buf, len(data), ctypes.byref(out), ctypes.byref(w), ctypes.byref(h)))
        try:
            return np.frombuffer(ctypes.string_at(out, w.value * h.value * 3), dtype=np.uint8).reshape(h.value, w.value, 3).copy()
        finally:
            _lib.ntc_free(out)


_default = None
_default_lock = threading.Lock()


def _default_model():
    global _default
    with _default_lock:
        if _default is None:
            _default = Model()
        return _default


def encode(image, quality=50, lam=0.0, model=None):
    """Encode with `model` (a Model) or the default model."""
    return (model or _default_model()).encode(image, quality, lam)


def decode(data, model=None):
    """Decode with `model` (a Model) or the default model."""
    return (model or _default_model()).decode(data)


def psnr(a, b):
    """PSNR in dB of two uint8 images of the same shape (over all channels, peak 255)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("psnr: shapes differ")
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def _gaussian_window(size=11, sigma=1.5):
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter(img, g):  # separable 'valid' filtering of a 2-D array
    k = len(g)
    rows = sum(g[i] * img[i:img.shape[0] - k + 1 + i, :] for i in range(k))
    return sum(g[i] * rows[:, i:rows.shape[1] - k + 1 + i] for i in range(k))


def _pool(x):  # 2x2 average pooling after symmetric (edge-repeating) padding of an odd size, as TensorFlow
    if x.shape[0] % 2:
        x = np.concatenate([x, x[-1:, :]], 0)
    if x.shape[1] % 2:
        x = np.concatenate([x, x[:, -1:]], 1)
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4


def ms_ssim(a, b, max_val=255.0):
    """MS-SSIM with TensorFlow's defaults (tf.image.ssim_multiscale), as `ntc eval` computes it
    (lib/metrics.h): 11x11 Gaussian window σ 1.5, k1 0.01, k2 0.03, 5 scales weighted
    0.0448/0.2856/0.3001/0.2363/0.1333, per channel, then averaged. Images must be at least 161
    pixels a side."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError("ms_ssim: two H x W x C images of the same shape")
    if min(a.shape[:2]) < 161:
        raise ValueError("ms_ssim: images must be at least 161 pixels a side (five scales of an 11-tap window)")
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    g = _gaussian_window()
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[:, :, ch], b[:, :, ch]
        mcs = []
        for s in range(5):
            mx, my = _filter(x, g), _filter(y, g)
            sxx = _filter(x * x, g) - mx * mx
            syy = _filter(y * y, g) - my * my
            sxy = _filter(x * y, g) - mx * my
            cs = (2 * sxy + c2) / (sxx + syy + c2)
            if s < 4:
                mcs.append(max(np.mean(cs), 0.0))
                x, y = _pool(x), _pool(y)
            else:
                ssim = np.mean(((2 * mx * my + c1) / (mx * mx + my * my + c1)) * cs)
                vals.append(float(np.prod(np.array(mcs) ** weights[:4]) * max(ssim, 0.0) ** weights[4]))
    return float(np.mean(vals))
