"""Makes JPEG test images and what Pillow reads from them (load_image's path: open, exif_transpose, convert("RGB")), as
raw RGB bytes beside each file (X.jpg and X.jpg.rgb, rows top to bottom, 3 bytes per pixel). Run from the repository
root with Debian 12's python3-pil (Pillow 9.4.0 on libjpeg-turbo 2.1.5):
    /usr/bin/python3 tests/data/images/jpeg/make_cases.py

Pillow's encoder makes the 4:4:4, 4:2:2 and 4:2:0 files. Sampling factors, restart intervals and colour spaces it cannot
write (4:4:0, 4:1:1, YCCK, Adobe RGB, CMYK without an Adobe marker) come from the small baseline encoder below, which
borrows the standard Huffman and quantisation tables from a file Pillow wrote. Files Pillow refuses are not written.
"""
import io
import os
import struct

import numpy as np
from PIL import Image, ImageOps

out = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(15)


def picture(w, h):
    """Gradients, a disc and some noise: enough colour detail for upsampling and rounding differences to show."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    disc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2
    r[disc], g[disc], b[disc] = 230, 40, 60
    a = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def segments(data):
    """(marker, body) for every segment before the first scan."""
    p, result = 2, []
    while True:
        marker, length = data[p + 1], struct.unpack(">H", data[p + 2:p + 4])[0]
        result.append((marker, data[p + 4:p + 2 + length]))
        if marker == 0xDA:
            return result
        p += 2 + length


# Standard tables as Pillow (libjpeg) writes them at quality 75 without optimize: DQT in zigzag order, DHT bits + values.
_reference = io.BytesIO()
picture(16, 16).save(_reference, "JPEG", quality=75)
QT, HT = {}, {}
for marker, body in segments(_reference.getvalue()):
    if marker == 0xDB:
        for i in range(0, len(body), 65):
            QT[body[i] & 15] = list(body[i + 1:i + 65])
    elif marker == 0xC4:
        i = 0
        while i < len(body):
            bits = list(body[i + 1:i + 17])
            HT[body[i]] = (bits, list(body[i + 17:i + 17 + sum(bits)]))
            i += 17 + sum(bits)

ZIGZAG = sorted(((u, v) for u in range(8) for v in range(8)),
                key=lambda t: (t[0] + t[1], t[1] if (t[0] + t[1]) % 2 == 0 else t[0]))
DCT = np.array([[(np.sqrt(0.5) if u == 0 else 1.0) / 2 * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)]
                for u in range(8)])


def codes(table):
    bits, values = HT[table]
    result, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            result[values[k]] = (code, length)
            code, k = code + 1, k + 1
        code <<= 1
    return result


class Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, length):
        self.acc, self.n = (self.acc << length) | (value & ((1 << length) - 1)), self.n + length
        while self.n >= 8:
            byte = (self.acc >> (self.n - 8)) & 255
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)
            self.n -= 8

    def flush(self):
        if self.n:
            self.put(0x7F, 8 - self.n)  # pad with ones


def encode(planes, factors, tables, width, height, adobe=None, ids=None, restart=0):
    """Baseline JPEG of already colour-converted full-size planes (float, 0..255) with the given (h, v) per component."""
    hmax, vmax = max(h for h, _ in factors), max(v for _, v in factors)
    if len(planes) == 1:
        factors = [(1, 1)]
        hmax = vmax = 1
    mcux, mcuy = -(-width // (8 * hmax)), -(-height // (8 * vmax))
    ids = ids or list(range(1, len(planes) + 1))
    blocks = []
    for plane, (h, v), t in zip(planes, factors, tables):
        sx, sy = hmax // h, vmax // v
        full = np.pad(plane, ((0, mcuy * vmax * 8 - height), (0, mcux * hmax * 8 - width)), mode="edge")
        small = full.reshape(full.shape[0] // sy, sy, full.shape[1] // sx, sx).mean(axis=(1, 3))
        # libjpeg replicates the last real sample into the padding of a downsampled plane as well
        cw, ch = -(-width * h // hmax), -(-height * v // vmax)
        small = np.pad(small[:ch, :cw], ((0, small.shape[0] - ch), (0, small.shape[1] - cw)), mode="edge")
        q = np.zeros((8, 8))
        for k, (u, w) in enumerate(ZIGZAG):
            q[u, w] = QT[t][k]
        blocks.append((small, q))
    dc = [codes(t) for t in (0x00, 0x01)]
    ac = [codes(t) for t in (0x10, 0x11)]
    bits, pred = Bits(), [0] * len(planes)

    def block(pixels, q, t, c):
        coef = np.round(DCT @ (pixels - 128.0) @ DCT.T / q).astype(int)
        zz = [coef[u, v] for u, v in ZIGZAG]
        diff, pred[c] = zz[0] - pred[c], zz[0]
        size = int(abs(diff)).bit_length()
        bits.put(*dc[t][size])
        bits.put(diff if diff >= 0 else diff - 1, size)
        run = 0
        for value in zz[1:]:
            if value == 0:
                run += 1
                continue
            while run > 15:
                bits.put(*ac[t][0xF0])
                run -= 16
            size = int(abs(value)).bit_length()
            bits.put(*ac[t][(run << 4) | size])
            bits.put(value if value >= 0 else value - 1, size)
            run = 0
        if run:
            bits.put(*ac[t][0])

    mcu = 0
    for my in range(mcuy):
        for mx in range(mcux):
            if restart and mcu and mcu % restart == 0:
                bits.flush()
                bits.out += bytes([0xFF, 0xD0 + (mcu // restart - 1) % 8])
                pred = [0] * len(planes)
            for c, ((small, q), (h, v), t) in enumerate(zip(blocks, factors, tables)):
                for by in range(v):
                    for bx in range(h):
                        y0, x0 = (my * v + by) * 8, (mx * h + bx) * 8
                        block(small[y0:y0 + 8, x0:x0 + 8], q, min(t, 1), c)
            mcu += 1
    bits.flush()

    def seg(marker, body):
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    f = bytearray(b"\xFF\xD8")
    if adobe is None:
        f += seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    else:
        f += seg(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, adobe))
    for t in sorted(set(tables)):
        f += seg(0xDB, bytes([t]) + bytes(QT[t]))
    f += seg(0xC0, struct.pack(">BHHB", 8, height, width, len(planes))
             + b"".join(bytes([i, (h << 4) | v, t]) for i, (h, v), t in zip(ids, factors, tables)))
    for t in (0x00, 0x10, 0x01, 0x11):
        f += seg(0xC4, bytes([t]) + bytes(HT[t][0]) + bytes(HT[t][1]))
    if restart:
        f += seg(0xDD, struct.pack(">H", restart))
    f += seg(0xDA, bytes([len(planes)]) + b"".join(bytes([i, min(t, 1) * 0x11]) for i, t in zip(ids, tables)) + b"\0\x3F\0")
    return bytes(f + bits.out + b"\xFF\xD9")


def ycc(im):
    a = np.asarray(im, dtype=np.float64)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    return [0.299 * r + 0.587 * g + 0.114 * b,
            -0.168736 * r - 0.331264 * g + 0.5 * b + 128,
            0.5 * r - 0.418688 * g - 0.081312 * b + 128]


def ours(size, factors, **kw):
    im = picture(*size)
    return encode(ycc(im), factors, [0, 1, 1], *size, **kw)


def pillow(size, mode="RGB", **kw):
    im = picture(*size).convert(mode)
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def exif(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()


def insert_after_soi(data, extra):
    return data[:2] + extra + data[2:]


def app(marker, body):
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


def junk_before_dqt(data):
    p = data.index(b"\xFF\xDB")
    return data[:p] + b"\x00\x12\x34" + data[p:]


k_plane = np.tile(np.linspace(0, 255, 29), (21, 1))
cases = {
    "444.jpg": lambda: pillow((61, 47), subsampling=0),
    "422.jpg": lambda: pillow((61, 47), subsampling=1),
    "420.jpg": lambda: pillow((61, 47), subsampling=2),
    "420-17x13.jpg": lambda: pillow((17, 13), subsampling=2),
    "420-1x1.jpg": lambda: pillow((1, 1), subsampling=2),
    "422-33x7.jpg": lambda: pillow((33, 7), subsampling=1),
    "420-2x33.jpg": lambda: pillow((2, 33), subsampling=2),
    "440.jpg": lambda: ours((61, 47), [(1, 2), (1, 1), (1, 1)]),
    "440-17x13.jpg": lambda: ours((17, 13), [(1, 2), (1, 1), (1, 1)]),
    "411.jpg": lambda: ours((61, 47), [(4, 1), (1, 1), (1, 1)]),
    "420-ours-33x7.jpg": lambda: ours((33, 7), [(2, 2), (1, 1), (1, 1)]),
    "restart-420.jpg": lambda: ours((61, 47), [(2, 2), (1, 1), (1, 1)], restart=2),
    "restart-444.jpg": lambda: ours((29, 21), [(1, 1), (1, 1), (1, 1)], restart=1),
    "progressive-420.jpg": lambda: pillow((61, 47), subsampling=2, progressive=True),
    "progressive-444.jpg": lambda: pillow((33, 7), subsampling=0, progressive=True),
    "optimize.jpg": lambda: pillow((61, 47), optimize=True),
    "q100.jpg": lambda: pillow((61, 47), quality=100),
    "q10.jpg": lambda: pillow((61, 47), quality=10),
    "gray.jpg": lambda: pillow((61, 47), "L"),
    "gray-progressive.jpg": lambda: pillow((17, 13), "L", progressive=True),
    "cmyk-adobe.jpg": lambda: pillow((29, 21), "CMYK"),
    "cmyk-plain.jpg": lambda: encode([255 - np.asarray(picture(29, 21), dtype=np.float64)[..., i] for i in range(3)]
                                     + [k_plane], [(1, 1)] * 4, [0, 0, 0, 0], 29, 21, adobe=None),
    "ycck.jpg": lambda: encode(ycc(picture(29, 21)) + [k_plane], [(2, 2), (1, 1), (1, 1), (2, 2)], [0, 1, 1, 0], 29, 21,
                               adobe=2),
    "adobe-rgb.jpg": lambda: encode([np.asarray(picture(29, 21), dtype=np.float64)[..., i] for i in range(3)],
                                    [(1, 1)] * 3, [0, 0, 0], 29, 21, adobe=0),
    "junk-before-marker.jpg": lambda: junk_before_dqt(pillow((29, 21))),
    "broken-exif.jpg": lambda: insert_after_soi(pillow((29, 21)), app(0xE1, b"Exif\0\0MM\0*\0\0\0\x08\x00\x05\x01")),
    "photoshop-app13.jpg": lambda: insert_after_soi(pillow((29, 21)), app(
        0xED, b"Photoshop 3.0\x008BIM\x04\x04\0\0\0\0\0\x0C\x1C\x02\x00\x00\x02\x00\x04\x1C\x02\x05\x00\x00")),
    "comment.jpg": lambda: insert_after_soi(pillow((29, 21)), app(0xFE, b"made by make_cases.py")),
}
for o in range(2, 9):
    cases[f"exif{o}.jpg"] = lambda o=o: pillow((13, 7), subsampling=2, exif=exif(o))

for name, make in cases.items():
    data = make()
    path = os.path.join(out, name)
    try:
        im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        rgb = im.convert("RGB")
    except Exception as e:  # a case Pillow refuses is not a case of what Pillow reads
        print(f"{name}: Pillow refuses it ({e}); not written")
        continue
    with open(path, "wb") as f:
        f.write(data)
    with open(path + ".rgb", "wb") as f:
        f.write(rgb.tobytes())
    print(name, Image.open(path).mode, rgb.size, len(data))
